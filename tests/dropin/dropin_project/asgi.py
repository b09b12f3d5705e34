from django.core.asgi import get_asgi_application

from notifications.asgi import serve_streams

application = serve_streams(get_asgi_application())
