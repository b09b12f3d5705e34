"""
The one rule for the links a notification carries: its ``url``, and in its
``data`` the ``"url"`` that django-notifications-hq code stored there and each
``"actions"[i]["href"]``. A link is safe when it is

- relative (``/inbox/7``, ``inbox/7``, ``?page=2``, ``#top``), or
- absolute with the scheme ``http`` or ``https`` (any case),

and holds no control character (tab, newline, NUL... which browsers drop from
URLs, so ``java\\tscript:`` would run), no leading or trailing space (which
browsers strip), and does not start with two slashes or backslashes: a
protocol-relative ``//host/path`` takes its scheme from the page, and has none
in an email; write ``https://host/path``. Anything else (``javascript:``,
``data:``, ``vbscript:``, ``mailto:``...) is refused.

``api.notify()``, ``api.broadcast()`` and ``notify.send()`` refuse an unsafe
link (``check_url`` / ``check_data``); every surface renders stored links
through ``safe_url`` too (templates' ``safe_url`` filter, the JSON renderer,
email), since rows written before the rule, or directly with the ORM, keep
theirs. ``static/notifications/links.js`` is the same rule for the browser
client and the service worker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

ALLOWED = "a relative URL (/path, path, ?query, #fragment) or an absolute http(s) URL"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"\A([A-Za-z][A-Za-z0-9+.\-]*):")
_NETWORK_PATH = re.compile(r"\A[/\\]{2}")


def problem(url: str) -> str:
    """Why ``url`` is not a safe link, or "" when it is (the empty string is safe: no link)."""
    if _CONTROL.search(url):
        return "holds a control character (tab, newline...)"
    if url.startswith(" ") or url.endswith(" "):
        return "starts or ends with a space"
    if _NETWORK_PATH.match(url):
        return "is protocol-relative (//host): write https://host/..."
    scheme = _SCHEME.match(url)
    if scheme and scheme.group(1).lower() not in ("http", "https"):
        return f"has the scheme {scheme.group(1)!r}"
    return ""


def is_safe(url: Any) -> bool:
    """Is ``url`` a string that is a safe link (see the module's doc)?"""
    return isinstance(url, str) and not problem(url)


def safe_url(url: Any) -> str:
    """``url`` if it is a safe link, else "": what every surface renders as a link."""
    return url if is_safe(url) else ""


def check_url(url: str, name: str = "url") -> str:
    """Return ``url`` if it is a safe link; else raise ``ValueError`` saying what is allowed."""
    found = problem(url)
    if found:
        raise ValueError(f"{name} {found}: {url[:80]!r}; allowed: {ALLOWED}.")
    return url


def check_data(data: Mapping[str, Any]) -> None:
    """
    Raise ``ValueError`` when ``data["url"]`` or an ``data["actions"][i]["href"]``
    is a string that is not a safe link.
    """
    for name, url in data_links(data):
        check_url(url, name)


def safe_data(data: Any) -> Any:
    """``data`` with its unsafe links (as ``check_data`` finds them) replaced by ""."""
    if not isinstance(data, Mapping) or all(is_safe(url) for _, url in data_links(data)):
        return data
    cleaned = dict(data)
    if isinstance(cleaned.get("url"), str):
        cleaned["url"] = safe_url(cleaned["url"])
    if isinstance(cleaned.get("actions"), list):
        cleaned["actions"] = [_safe_action(action) for action in cleaned["actions"]]
    return cleaned


def _safe_action(action: Any) -> Any:
    if isinstance(action, Mapping) and isinstance(action.get("href"), str):
        return {**action, "href": safe_url(action["href"])}
    return action


def absolute_url(url: Any, base: str) -> str:
    """
    A safe ``url`` made absolute for places without a page to resolve it
    against (email, push): a relative one is joined to ``base`` (scheme and
    host, no trailing slash); an unsafe one is "".
    """
    url = safe_url(url)
    if not url or _SCHEME.match(url):
        return url
    return base + (url if url.startswith("/") else "/" + url)


def data_links(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (name, link) pairs of ``data`` that the rule applies to."""
    found = []
    if isinstance(data.get("url"), str):
        found.append(('data["url"]', data["url"]))
    actions = data.get("actions")
    if isinstance(actions, list):
        for i, action in enumerate(actions):
            if isinstance(action, Mapping) and isinstance(action.get("href"), str):
                found.append((f'data["actions"][{i}]["href"]', action["href"]))
    return found
