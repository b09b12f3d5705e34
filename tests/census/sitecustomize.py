"""
Tests only: count the objects the garbage collector tracks in a server process.

``tests/test_stream_footprint.py`` starts a server with this directory on its
PYTHONPATH and NOTIFICATIONS_TEST_CENSUS naming a file. Python imports
``sitecustomize`` at start-up; this one answers two signals, each by writing
JSON to that file:

- SIGUSR2, mark: collect, then freeze every object alive (``gc.freeze``),
  and hold the automatic collections until the census, keeping what a
  collection finds unreachable (``gc.DEBUG_SAVEALL``);
- SIGUSR1, census: the garbage in reference cycles made since the mark (what
  only a collection frees), by type; the objects allocated since the mark that
  are still alive, by type; then (after ``gc.unfreeze`` and a collection) every
  tracked object by type.

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
    """
    The object's type; for methods and coroutines, also what they run. Only
    ``type(o)`` is asked of other objects: a lazy object (Django's
    ``SimpleLazyObject``) would evaluate itself for anything else.
    """
    kind = type(o)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if kind is types.MethodType:
        name += f"({getattr(o.__func__, '__qualname__', '?')})"
    elif kind is types.CoroutineType:
        name += f"({o.__qualname__})"
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
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    _write({"marked": True})


def _census(signum, frame) -> None:
    gc.collect()  # what is left of the young objects, frozen ones aside
    garbage = _by_type(gc.garbage)  # cyclic garbage since the mark (none without one)
    gc.garbage.clear()
    gc.set_debug(0)
    gc.enable()
    gc.collect()  # frees it
    since = gc.get_objects()
    new = _by_type(since)
    del since
    gc.unfreeze()
    gc.collect()
    everything = gc.get_objects()
    answer = {"new": new, "all": _by_type(everything), "garbage": garbage}
    del everything
    _write(answer)


if _path:
    signal.signal(signal.SIGUSR2, _mark)
    signal.signal(signal.SIGUSR1, _census)
