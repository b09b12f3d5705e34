"""
The demo in French, switched with its language selector: the page, the bell
and its list, a toast, the live region and the preferences page speak French.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from .demo import Bell, DemoServer

pytestmark = pytest.mark.browser

Login = Callable[..., Bell]

FRENCH_RELATIVE_TIME = re.compile(r"^(maintenant|il y a \d+ (minutes?|heures?))$")


@pytest.fixture
def french(login: Login, server: DemoServer) -> Bell:
    """alice, after choosing Français in the demo's language selector."""
    alice = login("alice")
    page = alice.page
    page.select_option("#language", "fr")
    page.click("[data-language-switch] button[type=submit]")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    alice.wait_connected()
    return alice


def test_the_page_and_the_bell_speak_french(french: Bell) -> None:
    page = french.page
    expect(page.locator("h1")).to_have_text("Bonjour, alice")
    expect(french.status).to_have_text("connecté")
    expect(french.button).to_have_attribute("aria-label", "Notifications, 1 nouvelle")


def test_the_list_speaks_french(french: Bell) -> None:
    french.open_panel()
    expect(french.panel.locator("h2")).to_have_text("Notifications")
    expect(french.panel.locator("[data-notifications-read-all]")).to_have_text("Tout marquer comme lu")
    expect(french.items.first.locator("[data-notifications-mark-read]")).to_have_text("Marquer comme lu")
    # Relative times come from Intl.RelativeTimeFormat in the page's language
    # (the demo's welcome was made when its database was, a while ago).
    expect(french.items.first.locator("time")).to_have_text(FRENCH_RELATIVE_TIME)


def test_the_snoozes_choices_speak_french(french: Bell) -> None:
    french.open_panel()
    french.items.first.locator("[data-notifications-snooze]").click()
    choices = french.items.first.get_by_role("group", name="Reporter jusqu’à")
    expect(choices.get_by_role("button")).to_have_text(["Dans 1 heure", "Demain", "La semaine prochaine"])


def test_a_live_notification_its_toast_and_the_announced_count_speak_french(
    french: Bell, server: DemoServer
) -> None:
    server.notify("alice", "a écrit")
    toast = french.toasts.filter(has_text="a écrit")
    expect(toast).to_have_count(1)
    expect(toast.locator("button")).to_have_attribute("aria-label", "Fermer")
    announce = french.page.locator("[data-notifications-announce]")
    expect(announce).to_have_text("2 nouvelles notifications")
    french.open_panel()
    item = french.item("a écrit")
    expect(item.locator("[data-notifications-mark-read]")).to_have_text("Marquer comme lu")
    expect(item.locator("time")).to_have_text("maintenant")


def test_the_preferences_page_speaks_french(french: Bell, server: DemoServer) -> None:
    page = french.page
    page.goto(server.url("/preferences/"))
    expect(page.locator("h1")).to_have_text("Préférences de notification")
    form = page.locator("[data-notifications-preferences-form]")
    expect(form.locator("thead th").nth(1)).to_have_text("Dans l'application")
    expect(form.locator("tr[data-kind=comment] th")).to_have_text("Commentaires")
    expect(form.locator("button[type=submit]")).to_have_text("Enregistrer les préférences")
