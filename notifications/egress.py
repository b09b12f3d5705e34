"""
Where the server may connect to deliver Web Push, and the connections that
keep to it.

A push endpoint is a URL the browser hands over, so it is whatever a user
posts: left alone, the worker would POST to any address it names (a cloud
metadata service, an internal admin). Two rules keep it to push services:

- its host must be in NOTIFICATIONS_PUSH_SERVICES (the browsers' push
  services by default), each entry with its subdomains; checked when a
  subscription is stored and again on every connection, redirects included;
- the addresses the host resolves to when the worker connects must be
  public: a loopback, private, link-local, shared, reserved or multicast
  address is refused, however the name resolved when it was stored (DNS
  rebinding). The connection goes to the very address that was checked.

An entry that is an IP address (``"127.0.0.1"``, ``"10.0.0.5"``) allows that
one address, private or not, and nothing else: how a push service on a
private network, or the tests' local one, is allowed on purpose.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import Any

from .conf import conf

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The server will not connect to this push endpoint; the message says why."""


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def host_allowed(host: str) -> bool:
    """Whether NOTIFICATIONS_PUSH_SERVICES allows ``host`` (a name with its subdomains, or an exact address)."""
    host = host.strip("[]").rstrip(".").lower()
    literal = _address(host)
    for entry in conf.PUSH_SERVICES:
        allowed = _address(entry)
        if literal is not None or allowed is not None:
            if literal is not None and literal == allowed:
                return True
        elif host == entry or host.endswith("." + entry):
            return True
    return False


def is_public(address: Address) -> bool:
    """Whether ``address`` is on the public internet (IPv4 inside IPv6 is judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return address.is_global and not address.is_multicast


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def addresses(host: str, port: int) -> list[str]:
    """
    The addresses the worker may connect to for ``host``: the host must be
    allowed, and every address it resolves to public (unless the host is an
    address entry of the setting). Raises ``Refused`` (``socket.gaierror``
    when the name does not resolve).
    """
    host = host.strip("[]").rstrip(".").lower()
    if not host_allowed(host):
        raise Refused(f"{host} is not a push service in NOTIFICATIONS_PUSH_SERVICES")
    literal = _address(host)
    if literal is not None:  # listed as an address: allowed on purpose
        return [str(literal)]
    found: list[str] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        ip = str(sockaddr[0])
        if not is_public(ipaddress.ip_address(ip.split("%")[0])):
            raise Refused(f"{host} resolves to {ip}, which is not a public address")
        if ip not in found:
            found.append(ip)
    return found


def session() -> Any:
    """
    A ``requests`` session (``requests`` comes with the push extra) whose
    every connection keeps to the rules above (``Refused`` otherwise), with no
    proxy or ``.netrc`` from the environment: what it checks is where it
    connects.
    """
    import requests

    s = requests.Session()
    s.trust_env = False
    adapter = _adapter_class()()
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


@functools.cache
def _adapter_class() -> Any:
    """A ``requests`` transport adapter whose connections go through ``addresses()``."""
    from requests.adapters import HTTPAdapter
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
    from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
    from urllib3.util.connection import create_connection

    def connect(conn: HTTPConnection) -> socket.socket:
        # urllib3's own ``_new_conn``, to a checked address.
        try:
            candidates = addresses(conn._dns_host, conn.port)
        except socket.gaierror as exc:
            raise NameResolutionError(conn.host, conn, exc) from exc
        error: OSError | None = None
        for ip in candidates:
            try:
                return create_connection(
                    (ip, conn.port),
                    conn.timeout,
                    source_address=conn.source_address,
                    socket_options=conn.socket_options,
                )
            except TimeoutError as exc:
                raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out.") from exc
            except OSError as exc:
                error = exc
        raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")

    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return connect(self)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return connect(self)

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    class GuardedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {
                "http": GuardedHTTPConnectionPool,
                "https": GuardedHTTPSConnectionPool,
            }

    return GuardedAdapter
