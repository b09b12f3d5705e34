"""``manage.py notifications_hq_check`` lists a switching project's hq usages that behave differently here."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command


def check(root: Path) -> str:
    out = StringIO()
    with pytest.raises(CommandError, match=r"usage\(s\) of django-notifications-hq to change"):
        call_command("notifications_hq_check", str(root), stdout=out)
    return out.getvalue()


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_get_link_to_mark_as_read_is_named_with_file_line_and_the_fix(tmp_path):
    write(tmp_path, "templates/inbox.html",
          '<ul>\n<a href="{% url \'notifications:mark_as_read\' n.slug %}">read</a>\n</ul>\n')
    out = check(tmp_path)
    assert f"{tmp_path / 'templates/inbox.html'}:2: [get-mutation]" in out
    assert "csrf_token" in out


def test_a_redirect_to_a_mutation_url_in_python_is_named(tmp_path):
    write(tmp_path, "app/views.py", 'x = reverse("notifications:mark_all_as_read")\n')
    assert "views.py:1: [get-mutation]" in check(tmp_path)


def test_data_contains_with_a_string_is_named(tmp_path):
    write(tmp_path, "app/services.py", "\n\nqs.filter(data__contains='\"order\": 7')\n")
    out = check(tmp_path)
    assert "services.py:3: [data-contains-text]" in out
    assert "data__<key>=value" in out


def test_abstract_notification_and_swapper_are_named(tmp_path):
    write(tmp_path, "app/models.py",
          "import swapper\nfrom notifications.base.models import AbstractNotification\n"
          "N = swapper.load_model('notifications', 'Notification')\n")
    out = check(tmp_path)
    assert "models.py:1: [swapper]" in out
    assert "models.py:2: [abstract-model]" in out
    assert "models.py:3: [swapper]" in out


def test_another_notification_model_setting_is_named_but_the_default_is_not(tmp_path):
    write(tmp_path, "proj/settings.py",
          'NOTIFICATIONS_NOTIFICATION_MODEL = "notifications.Notification"\n'
          'NOTIFICATIONS_NOTIFICATION_MODEL = "inbox.Message"\n')
    out = check(tmp_path)
    assert "settings.py:2: [swapped-model]" in out
    assert "settings.py:1:" not in out


def test_virtualenvs_are_not_scanned_and_a_clean_project_passes(tmp_path):
    write(tmp_path, ".venv/lib/notifications/base/models.py", "class AbstractNotification: ...\n")
    write(tmp_path, "app/views.py", 'Notification.objects.filter(data__contains={"a": 1})\n')
    out = StringIO()
    call_command("notifications_hq_check", str(tmp_path), stdout=out)
    assert "No django-notifications-hq usages" in out.getvalue()


def test_a_missing_path_is_an_error_naming_it(tmp_path):
    with pytest.raises(CommandError, match="No such file or folder: .*nowhere"):
        call_command("notifications_hq_check", str(tmp_path / "nowhere"))


def test_isnull_on_a_column_that_is_never_null_here_is_named(tmp_path):
    write(tmp_path, "app/jobs.py", "Notification.objects.filter(description__isnull=True)\n")
    assert "jobs.py:1: [never-null]" in check(tmp_path)
