"""Email backends for failure tests: one that refuses, one that hangs mid-send."""

from __future__ import annotations

import os
import time

from django.core.mail.backends.base import BaseEmailBackend


class Broken(BaseEmailBackend):
    """The mail server is down."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("the mail server refused the connection")


class Hang(BaseEmailBackend):
    """Touches $HANG_MARKER when a send begins, then never returns (the test kills the process)."""

    def send_messages(self, messages):
        with open(os.environ["HANG_MARKER"], "w") as marker:
            marker.write(str(os.getpid()))
        time.sleep(120)
        return 0


class Files(BaseEmailBackend):
    """One file per message in $DEMO_EMAIL_DIR, named by the sending process: ``<pid>-<n>.eml``."""

    def send_messages(self, messages):
        folder = os.environ["DEMO_EMAIL_DIR"]
        delay = float(os.environ.get("SLOW_EMAIL", "0"))
        for message in messages:
            time.sleep(delay)
            name = os.path.join(folder, f"{os.getpid()}-{time.monotonic_ns()}.eml")
            # Written aside, then renamed: a test polling the folder never
            # reads a message half written.
            with open(name + ".part", "wb") as out:
                out.write(message.message().as_bytes())
            os.replace(name + ".part", name)
        return len(messages)
