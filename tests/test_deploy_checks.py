"""Deployment checks that catch real mistakes: emails' base URL, and hq's swapper setting."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks


def ids(messages):
    return [m.id for m in messages]


def deploy_checks():
    return run_checks(include_deployment_checks=True, tags=["security"])


def base_url_warnings():
    return [m for m in deploy_checks() if m.id == "notifications.W040"]


def test_the_default_base_url_is_flagged_by_check_deploy(settings):
    del settings.NOTIFICATIONS_BASE_URL  # the app's default, http://127.0.0.1:8000
    (warning,) = base_url_warnings()
    assert "'http://127.0.0.1:8000'" in warning.msg and "this machine" in warning.msg
    assert "https://" in warning.hint


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost",
        "https://localhost.:8443",
        "https://app.localhost",
        "https://127.0.0.2",
        "https://[::1]:8443",
        "https://0.0.0.0",
    ],
)
def test_a_loopback_base_url_is_flagged_by_check_deploy(settings, url):
    settings.NOTIFICATIONS_BASE_URL = url
    (warning,) = base_url_warnings()
    assert "points at this machine" in warning.msg and "not https" not in warning.msg


def test_a_plain_http_base_url_is_flagged_by_check_deploy(settings):
    settings.NOTIFICATIONS_BASE_URL = "http://www.example.com"
    (warning,) = base_url_warnings()
    assert "is not https" in warning.msg and "this machine" not in warning.msg


def test_a_base_url_without_scheme_is_flagged_by_check_deploy(settings):
    settings.NOTIFICATIONS_BASE_URL = "www.example.com"
    (warning,) = base_url_warnings()
    assert "not an https:// URL" in warning.msg


def test_a_public_https_base_url_passes_check_deploy(settings):
    settings.NOTIFICATIONS_BASE_URL = "https://www.example.com/"
    assert base_url_warnings() == []


def test_the_base_url_is_checked_only_with_deploy(settings):
    settings.NOTIFICATIONS_BASE_URL = "http://127.0.0.1:8000"
    assert "notifications.W040" not in ids(run_checks())


@pytest.mark.parametrize("value", ["notifications.Notification", "notifications.notification"])
def test_swappers_default_model_setting_is_no_error(settings, value):
    # swapper sets NOTIFICATIONS_NOTIFICATION_MODEL to the default model as soon
    # as hq-era code asks for it (swapper.get_model_name, swapper.load_model).
    settings.NOTIFICATIONS_NOTIFICATION_MODEL = value
    assert "notifications.E101" not in ids(run_checks())


def test_a_swapped_notification_model_is_an_error_naming_it(settings):
    settings.NOTIFICATIONS_NOTIFICATION_MODEL = "myapp.Notice"
    (error,) = [m for m in run_checks() if m.id == "notifications.E101"]
    assert "'myapp.Notice'" in error.msg and error.hint
