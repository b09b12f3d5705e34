"""
Tests only: count the objects the garbage collector tracks in a server process.

``tests/test_stream_footprint.py`` starts a server with this directory on its
PYTHONPATH and NOTIFICATIONS_TEST_CENSUS naming a file. Python imports
``sitecustomize`` at start-up; this one answers two signals, each by writing
JSON to that file:

- SIGUSR2, mark: collect, then freeze every object alive (``gc.freeze``);
- SIGUSR1, census: the objects allocated since the mark that are still alive,
  by type, then (after ``gc.unfreeze`` and a collection) every tracked object
  by type.

Nothing of this is in the library.
"""

import collections
import gc
import json
import os
import signal
import types

_path = os.environ.get("NOTIFICATIONS_TEST_CENSUS")


def _name(o: object) -> str:
    """The object's type; for methods and coroutines, also what they run."""
    name = f"{type(o).__module__}.{type(o).__qualname__}"
    inner = getattr(o, "__func__", None) or o
    if isinstance(o, types.MethodType | types.CoroutineType):
        name += f"({getattr(inner, '__qualname__', '?')})"
    return name


def _by_type(objects: list) -> dict[str, int]:
    return dict(collections.Counter(_name(o) for o in objects))


def _write(answer: dict) -> None:
    with open(_path + ".tmp", "w") as f:
        json.dump(answer, f)
    os.replace(_path + ".tmp", _path)


def _mark(signum, frame) -> None:
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _write({"marked": True})


def _census(signum, frame) -> None:
    gc.collect()  # what is left of the young objects, frozen ones aside
    since = gc.get_objects()
    new = _by_type(since)
    del since
    gc.unfreeze()
    gc.collect()
    everything = gc.get_objects()
    answer = {"new": new, "all": _by_type(everything)}
    del everything
    _write(answer)


if _path:
    signal.signal(signal.SIGUSR2, _mark)
    signal.signal(signal.SIGUSR1, _census)
