"""The README's security section lists every endpoint the app serves."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver

from notifications import urls

from .conftest import ROOT


def _documented_paths() -> set[str]:
    """
    The paths in the first column of the table. A shorter path after the first
    of a row is a sibling of it: `POST api/<id>/read/`, `unread/` names
    ``api/<id>/unread/`` too.
    """
    text = (ROOT / "README.md").read_text()
    section = text.split("**Every endpoint, who may call it", 1)[1].split("\n## ", 1)[0]
    paths: set[str] = set()
    for row in section.splitlines():
        if not row.startswith("| `"):
            continue
        first: list[str] | None = None
        for code in re.findall(r"`([^`]*)`", row.split("|")[1]):
            segments = [s for s in code.split(" ")[-1].split("/") if s]
            if first is not None and len(segments) < len(first):
                segments = first[: len(first) - len(segments)] + segments
            first = first or segments
            paths.add("".join(f"{s}/" for s in segments))
    return paths


def _shape(route: str) -> str:
    """A URL pattern's route with its parameters as <…>, as the README writes them."""
    route = route.lstrip("^").rstrip("$")
    route = re.sub(r"<(?:\w+:)?(\w+)>", "<x>", route)
    return re.sub(r"\(\?P<\w+>[^)]*\)", "<x>", route)


def test_every_endpoint_is_in_the_security_table():
    documented = {_shape(path) for path in _documented_paths()}
    served = [
        _shape(str(p.pattern)) for p in urls.urlpatterns if isinstance(p, URLPattern | URLResolver)
    ]
    assert [route for route in served if route not in documented] == []
