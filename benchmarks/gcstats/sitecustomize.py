"""
Benchmark only: time every garbage collection of the process this is imported into.

``run.py --gc-stats`` puts this directory on the server's PYTHONPATH with
BENCH_GC_STATS naming a file; Python imports ``sitecustomize`` at start-up, and
this one installs a ``gc.callbacks`` hook recording, per collection, the wall
time it ended, its generation, its duration and what it collected. The records
are written to that file as JSON when the process exits, also when it ends by
SIGTERM (uvicorn re-raises the signal after its graceful shutdown, which skips
``atexit``). Nothing of this is in the library.
"""

import atexit
import gc
import json
import os
import signal
import sys
import time

# The load client names its file in BENCH_GC_STATS_CLIENT, which the publisher
# processes it starts do not read (sys.argv tells them apart).
_path = os.environ.get("BENCH_GC_STATS")
if os.environ.get("BENCH_GC_STATS_CLIENT") and sys.argv and sys.argv[0].endswith("client.py"):
    _path = os.environ["BENCH_GC_STATS_CLIENT"]
if _path:
    _LIMIT = 500_000
    _records: list[tuple[float, int, float, int]] = []
    _started = [0.0]
    _clock = time.perf_counter
    _wall = time.time

    def _callback(phase: str, info: dict) -> None:
        if phase == "start":
            _started[0] = _clock()
        elif len(_records) < _LIMIT:
            _records.append(
                (_wall(), info["generation"], _clock() - _started[0], info["collected"])
            )

    gc.callbacks.append(_callback)

    def _dump() -> None:
        if not _records and os.path.exists(_path):
            return
        with open(_path, "w") as f:
            json.dump({"pid": os.getpid(), "records": _records}, f)

    def _on_sigterm(signum, frame) -> None:
        _dump()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    atexit.register(_dump)
    signal.signal(signal.SIGTERM, _on_sigterm)
