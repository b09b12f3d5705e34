"""
A local Web Push service for the tests: an HTTP server on 127.0.0.1 that, like
a browser vendor's, checks the VAPID JWT (RFC 8292), decrypts the aes128gcm
body (RFC 8291) with the subscription's private key, and answers whatever
the test scripts (201 by default).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    payload: Any  # the decrypted JSON
    vapid_key: str  # the k= of the Authorization header
    claims: dict[str, Any]


@dataclass
class Device:
    """A browser's side of one subscription: its key pair and auth secret."""

    endpoint: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def as_json(self) -> dict[str, Any]:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint, "expirationTime": None, "keys": {"p256dh": b64(public), "auth": b64(self.auth)}}


class PushService:
    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.answers: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.received: list[Received] = []
        self.errors: list[str] = []
        self.arrived: list[tuple[str, float]] = []  # (path, time.monotonic()) of every request
        self.held: set[str] = set()
        self.unheld = threading.Event()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                service.arrived.append((self.path, time.monotonic()))
                if self.path in service.held:  # a push service that never answers
                    service.unheld.wait(60)
                    return
                status, extra = service.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def allowed(self) -> list[str]:
        """NOTIFICATIONS_PUSH_SERVICES with this service added (by its address: a private one)."""
        from notifications.conf import BROWSER_PUSH_SERVICES

        return [*BROWSER_PUSH_SERVICES, "127.0.0.1"]

    def device(self, name: str) -> Device:
        device = Device(f"{self.url}/push/{name}")
        self.devices[f"/push/{name}"] = device
        return device

    def answer(self, name: str, *answers: int | tuple[int, dict[str, str]]) -> None:
        """The next answers for device ``name`` (then 201)."""
        self.answers.setdefault(f"/push/{name}", []).extend(
            a if isinstance(a, tuple) else (a, {}) for a in answers
        )

    def hold(self, name: str) -> None:
        """Device ``name``'s requests get no answer until the service closes."""
        self.held.add(f"/push/{name}")

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        device = self.devices.get(path)
        if device is None:
            return 404, {}
        try:
            key, claims = self._verify_vapid(headers)
            assert headers.get("content-encoding") == "aes128gcm", headers.get("content-encoding")
            plain = http_ece.decrypt(body, private_key=device.key, auth_secret=device.auth, version="aes128gcm")
            self.received.append(Received(path, headers, json.loads(plain), key, claims))
        except Exception as exc:  # reported to the test, which fails on it
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return 400, {}
        queued = self.answers.get(path)
        return queued.pop(0) if queued else (201, {})

    def _verify_vapid(self, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
        scheme, _, params = headers.get("authorization", "").partition(" ")
        assert scheme.lower() == "vapid", f"Authorization scheme {scheme!r}"
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        token, key = fields["t"], fields["k"]
        head, claims_b64, signature = token.split(".")
        assert json.loads(unb64(head)) == {"typ": "JWT", "alg": "ES256"}
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(key))
        raw = unb64(signature)
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        try:
            public.verify(der, f"{head}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise AssertionError("VAPID JWT signature does not verify") from None
        claims = json.loads(unb64(claims_b64))
        assert claims["aud"] == self.url, claims
        assert claims["exp"] > time.time() and claims["exp"] <= time.time() + 86400
        assert claims["sub"].startswith(("mailto:", "https:"))
        return key, claims

    def close(self) -> None:
        self.unheld.set()
        self.server.shutdown()
        self.server.server_close()
