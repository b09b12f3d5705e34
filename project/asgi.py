"""ASGI entry point: ``daphne project.asgi:application`` or ``uvicorn project.asgi:application``."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

from notifications.asgi import serve_streams  # noqa: E402

# The stream passes the project's middleware like any view, but holds no
# worker thread while it streams.
application = serve_streams(get_asgi_application())

from django.conf import settings  # noqa: E402

if settings.DEBUG:
    # Serve the JS client and the admin's files without collectstatic in the demo.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)
