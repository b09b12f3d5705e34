"""
This project's ASGI applications as the benchmark serves them (project/settings.py).

    safe    Django's ASGI handler for every request, the stream included: the
            project's middleware runs for the stream (host validation, the
            project's authentication). The default install; the headline row.
    fast    the opt-out: the stream's requests skip the middleware
            (``notifications.asgi.stream_without_middleware``).

With BENCH_GC_FREEZE=1 the process calls ``gc.freeze()`` once everything is
imported, as the README's Deploying section suggests for an ``asgi.py``.
"""

from __future__ import annotations

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

safe = get_asgi_application()

from notifications.asgi import stream_without_middleware  # noqa: E402

fast = stream_without_middleware(get_asgi_application())

if os.environ.get("BENCH_GC_FREEZE") == "1":
    gc.freeze()
