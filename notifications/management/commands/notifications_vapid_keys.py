"""
``manage.py notifications_vapid_keys``: print a new VAPID key pair for Web Push.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from notifications.push import generate_vapid_keys


class Command(BaseCommand):
    help = (
        "Generate a VAPID key pair (P-256, base64url) for Web Push and print it as the "
        "NOTIFICATIONS_VAPID_PUBLIC_KEY / NOTIFICATIONS_VAPID_PRIVATE_KEY settings. Keep the "
        "private key secret; changing keys invalidates every browser's subscription."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        public, private = generate_vapid_keys()
        self.stdout.write(f'NOTIFICATIONS_VAPID_PUBLIC_KEY = "{public}"')
        self.stdout.write(f'NOTIFICATIONS_VAPID_PRIVATE_KEY = "{private}"')
