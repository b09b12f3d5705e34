"""
Screenshots of the demo page, desktop and mobile, for people to look at:
written to test-artifacts/screenshots/ (git-ignored). docs/screenshot.png is
a copy of the desktop one.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .demo import ARTIFACTS, Bell, DemoServer, send_from_form

pytestmark = pytest.mark.browser

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "mobile": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.mark.parametrize("name", VIEWPORTS)
def test_screenshot_of_the_demo_page(
    name: str, login: Callable[..., Bell], server: DemoServer
) -> None:
    server.notify(
        "alice", "disk almost full", "--description", "db-2 is at 92%.", "--level", "warning"
    )
    server.notify(
        "alice",
        "deploy finished",
        "--description",
        "Version 2.4 is live.",
        "--level",
        "success",
        "--url",
        "/",
    )
    alice = login("alice", **VIEWPORTS[name])
    admin = login("admin")
    alice.open_panel()

    send_from_form(
        admin, "alice", "mentioned you in #general", "Can you look at the release notes?"
    )
    expect(alice.toasts).to_have_count(1)
    expect(alice.badge).to_have_text("1")  # opening the panel marked the first three seen

    path = ARTIFACTS / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    alice.page.screenshot(path=path, animations="disabled")
    width = int.from_bytes(path.read_bytes()[16:20], "big")  # the PNG header's width
    assert width == VIEWPORTS[name]["viewport"]["width"] * VIEWPORTS[name].get(
        "device_scale_factor", 1
    )
