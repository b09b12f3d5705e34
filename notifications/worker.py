"""
The delivery worker: sends due emails and pushes from the schedule.

Each pass claims due deliveries (schedule.claim: the attempt is committed
before anything is sent), checks each again (read, deleted, muted, quiet
hours) and hands it to its channel. Run it as ``manage.py
notifications_worker`` (``--once`` for cron), or let each server process run
it as a thread (NOTIFICATIONS_DELIVERY_THREAD; on by default with SQLite),
started by ``notifications.asgi.serve_streams``.
Any number of workers may run at once: a delivery is sent at most once.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import close_old_connections
from django.utils import timezone

from . import digests, mail, schedule
from .conf import conf
from .kinds import Kind, register
from .models import Delivery, Notification

logger = logging.getLogger(__name__)

State = Delivery.State


@dataclass(frozen=True)
class Outcome:
    """How a channel's attempt ended: a final ``state``, or ``retry_at`` (nothing was handed over)."""

    state: str = State.SENT
    note: str = ""
    retry_at: datetime | None = None


def _email(delivery: Delivery, n: Notification, kind: Kind) -> Outcome:
    why_not = mail.send(n, kind, delivery.recipient)
    return Outcome(State.SKIPPED, why_not) if why_not else Outcome()


def _push(delivery: Delivery, n: Notification, kind: Kind) -> Outcome:
    from . import push

    return push.deliver(delivery, n, kind)


# The sender of each away channel.
SENDERS: dict[str, Callable[[Delivery, Notification, Kind], Outcome]] = {
    "email": _email,
    "push": _push,
}


def _email_digest(first: Delivery, items: list[Notification], kinds: list[Kind]) -> Outcome:
    why_not = mail.send_digest(items, kinds, first.recipient)
    return Outcome(State.SKIPPED, why_not) if why_not else Outcome()


def _push_digest(first: Delivery, items: list[Notification], kinds: list[Kind]) -> Outcome:
    from . import push

    return push.deliver_digest(first, items)


# The sender of each away channel's digests: one message for several notifications.
DIGEST_SENDERS: dict[str, Callable[[Delivery, list[Notification], list[Kind]], Outcome]] = {
    "email": _email_digest,
    "push": _push_digest,
}


def deliver_due(limit: int | None = None) -> Counter[str]:
    """
    One pass: claim up to ``limit`` (NOTIFICATIONS_DELIVERY_BATCH) due
    deliveries and send, skip or hold each; those the pass has no time left
    for before their lease ends are given back, due as they were. Returns how
    many ended how ("sent", "skipped", "failed", "held", "retry", "released",
    "folded": into a digest; "lost": the claim was no longer this worker's,
    nothing was sent). Due digests go first, each as one message.
    """
    schedule.expire_claims()
    done: Counter[str] = Counter()
    for batch in digests.claim(limit=limit):
        done.update(digests.send(batch))
    for i, delivery in enumerate(schedule.claim(limit)):
        if i and _out_of_time(delivery):
            schedule.unclaim(delivery)
            done["released"] += 1
        else:
            done[_deliver(delivery)] += 1
    return done


def _out_of_time(delivery: Delivery) -> bool:
    """
    Whether sending ``delivery`` could outlast its claim's lease
    (NOTIFICATIONS_DELIVERY_LEASE), after which other workers take it for
    interrupted: a pass gives back what it has no time left for, so slow
    push services never cost the deliveries behind them.
    """
    assert delivery.claimed_at is not None  # noqa: S101  # narrows the type for mypy: a claimed row has claimed_at
    needs = timedelta(seconds=conf.PUSH_TIMEOUT + 1)
    return timezone.now() + needs > delivery.claimed_at + timedelta(seconds=conf.DELIVERY_LEASE)


def drain() -> Counter[str]:
    """Deliver everything due now, pass after pass, and return the totals."""
    total: Counter[str] = Counter()
    while True:
        done = deliver_due()
        total.update(done)
        if not done:
            return total


def _deliver(delivery: Delivery) -> str:
    if not schedule.renew(delivery):
        return "lost"  # no longer this worker's claim: nothing is sent
    try:
        verdict = schedule.check(delivery)
    except Exception as exc:
        logger.exception("Checking delivery %s failed", delivery.pk)
        schedule.finish(delivery, State.FAILED, f"{type(exc).__name__}: {exc}")
        return "failed"
    if verdict.wait_until is not None:
        schedule.hold(delivery, verdict.wait_until, "quiet hours")
        return "held"
    n = verdict.notification
    if n is None:
        schedule.finish(delivery, State.SKIPPED, verdict.skip)
        return "skipped"
    kind = register[n.kind]
    try:
        if digests.fold_if_planned(delivery, n, kind, timezone.now()):
            return "folded"
    except Exception as exc:
        logger.exception("Folding delivery %s into a digest failed", delivery.pk)
        schedule.finish(delivery, State.FAILED, f"{type(exc).__name__}: {exc}")
        return "failed"
    try:
        outcome = SENDERS[delivery.channel](delivery, n, kind)
    except Exception as exc:
        # What happened to the message is unknown: never try it again.
        logger.exception("Sending %s of notification %s failed", delivery.channel, n.pk)
        schedule.finish(delivery, State.FAILED, f"{type(exc).__name__}: {exc}")
        return "failed"
    if outcome.retry_at is not None:
        schedule.release(delivery, outcome.retry_at, outcome.note)
        return "retry"
    schedule.finish(delivery, outcome.state, outcome.note)
    return str(outcome.state)


class Worker:
    """A loop of ``deliver_due`` passes, ``poll`` seconds apart when idle; ``stop()`` ends it."""

    def __init__(self, poll: float | None = None):
        self.poll = conf.DELIVERY_POLL if poll is None else poll
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            busy = False
            try:
                busy = bool(deliver_due())
            except Exception:  # the database went away, say: keep the loop alive
                logger.exception("The delivery worker's pass failed; retrying")
            finally:
                close_old_connections()
            if not busy:
                self._stop.wait(self.poll)

    def stop(self) -> None:
        self._stop.set()

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._run_closing, name="notifications-worker", daemon=True)
        thread.start()
        return thread

    def _run_closing(self) -> None:
        from django.db import connections

        try:
            self.run()
        finally:
            connections.close_all()


_lock = threading.Lock()
_running: tuple[Worker, threading.Thread] | None = None


def start_in_server() -> bool:
    """
    Start this server process's worker thread, once, if
    NOTIFICATIONS_DELIVERY_THREAD says so; returns whether it runs.
    ``serve_streams`` calls it when the ASGI server starts the application
    (its lifespan scope, or its first request under a server without lifespan
    events, such as daphne); test clients and management commands never do.
    """
    global _running
    with _lock:
        if _running is None:
            if not conf.DELIVERY_THREAD:
                return False
            worker = Worker()
            _running = (worker, worker.start_thread())
            logger.info("Delivery worker thread started (NOTIFICATIONS_DELIVERY_THREAD)")
        return True


def stop_in_server(timeout: float = 10.0) -> None:
    """
    Stop this process's worker thread, if one runs, waiting up to ``timeout``
    seconds for the delivery it is sending (for a project's own shutdown hook,
    or a test; the thread is a daemon, and a claim it leaves unfinished is
    given up at the end of its lease).
    """
    global _running
    with _lock:
        running, _running = _running, None
    if running is not None:
        worker, thread = running
        worker.stop()
        thread.join(timeout)
