"""Someone who follows the preferences form's URL gets a page, not a JSON error."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

URL = "/notifications/preferences/"


def test_get_shows_the_preferences_form_to_a_logged_in_user(alice):
    client = Client()
    client.force_login(alice)
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert 'action="/notifications/preferences/"' in response.content.decode()


def test_get_sends_a_visitor_to_the_login_page_and_back(db):
    response = Client().get(URL)
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/notifications/preferences/"


def test_put_is_refused_with_the_methods_allowed(alice):
    client = Client()
    client.force_login(alice)
    response = client.put(URL)
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"


@pytest.mark.parametrize("url", [URL, "/preferences/"])
def test_the_preferences_pages_promise_nothing_about_channels(alice, url):
    """Email and push exist: no page says they are delivered "once those channels exist"."""
    client = Client()
    client.force_login(alice)
    html = client.get(url).content.decode()
    assert "Save preferences" in html
    assert "channels exist" not in html
