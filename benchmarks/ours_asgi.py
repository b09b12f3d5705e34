"""
This project's ASGI applications as the benchmark serves them (project/settings.py).

    safe    the default install (``notifications.asgi.serve_streams``): the
            project's middleware runs for the stream (host validation, the
            project's authentication), and no thread is held per open stream.
            The headline row.
    fast    the opt-out: the stream's requests skip the middleware
            (``serve_streams(..., middleware=False)``, as
            NOTIFICATIONS_STREAM_MIDDLEWARE = False does).

With BENCH_GC_THRESHOLD="T0,T1,T2" the process calls ``gc.set_threshold`` with
them, and with BENCH_GC_FREEZE=1 ``gc.freeze()`` once everything is imported, as
the README's Deploying section suggests for an ``asgi.py``.
"""

from __future__ import annotations

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

from notifications.asgi import serve_streams  # noqa: E402

safe = serve_streams(get_asgi_application())
fast = serve_streams(get_asgi_application(), middleware=False)

if os.environ.get("BENCH_GC_THRESHOLD"):
    gc.set_threshold(*(int(t) for t in os.environ["BENCH_GC_THRESHOLD"].split(",")))
if os.environ.get("BENCH_GC_FREEZE") == "1":
    gc.freeze()
