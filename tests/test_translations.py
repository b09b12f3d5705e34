"""
French and German are complete: every message the app marks for translation,
those added to the code since the .po files were last made included, has a
translation that is not fuzzy; the committed .mo files are those the .po
files compile to, and the package ships them.
"""

from __future__ import annotations

import gettext
import os
import re
import shutil
import subprocess
import sys
import tomllib
from html import unescape
from pathlib import Path

import pytest
from django.utils import translation

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "notifications"
LANGUAGES = ("fr", "de")

needs_gettext = pytest.mark.skipif(
    shutil.which("msgfmt") is None or shutil.which("xgettext") is None,
    reason="GNU gettext is missing: apt-get install gettext",
)


def django_admin(cwd: Path, *args: str) -> None:
    """Run a Django management command in ``cwd`` (makemessages works on the current folder)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr


def entries(po: Path) -> list[tuple[str, bool, bool]]:
    """(msgid, translated, fuzzy) per message of ``po``, the header left out."""
    found = []
    for block in po.read_text(encoding="utf-8").split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        fields: dict[str, str] = {}
        current = ""
        for line in lines:
            match = re.match(r'^(msgctxt|msgid|msgid_plural|msgstr(?:\[\d+\])?) "(.*)"$', line)
            if match:
                current = match.group(1)
                fields[current] = match.group(2)
            elif line.startswith('"') and current:
                fields[current] += line[1:-1]
        if not fields.get("msgid"):
            continue  # the header, or an obsolete entry
        translations = [value for key, value in fields.items() if key.startswith("msgstr")]
        fuzzy = any(line.startswith("#,") and "fuzzy" in line for line in lines)
        found.append((fields["msgid"], bool(translations) and all(translations), fuzzy))
    return found


@pytest.fixture(scope="module")
def fresh_catalogs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the app with its .po files made anew from the code, as makemessages does."""
    copy = tmp_path_factory.mktemp("messages") / "notifications"
    shutil.copytree(APP, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    django_admin(copy, "makemessages", *(f"--locale={code}" for code in LANGUAGES), "--no-location")
    return copy


@needs_gettext
@pytest.mark.parametrize("code", LANGUAGES)
def test_every_message_is_translated_and_none_is_fuzzy(fresh_catalogs: Path, code: str) -> None:
    po = fresh_catalogs / "locale" / code / "LC_MESSAGES" / "django.po"
    found = entries(po)
    assert len(found) > 50  # the parser read the file
    untranslated = [msgid for msgid, translated, _ in found if not translated]
    fuzzy = [msgid for msgid, _, is_fuzzy in found if is_fuzzy]
    assert untranslated == [], f"untranslated in {code}: {untranslated}"
    assert fuzzy == [], f"fuzzy in {code}: {fuzzy}"


@needs_gettext
@pytest.mark.parametrize("code", LANGUAGES)
def test_committed_mo_files_are_the_compiled_po_files(tmp_path: Path, code: str) -> None:
    copy = tmp_path / "notifications"
    shutil.copytree(APP / "locale", copy / "locale", ignore=shutil.ignore_patterns("*.mo"))
    django_admin(copy, "compilemessages", f"--locale={code}")
    compiled = copy / "locale" / code / "LC_MESSAGES" / "django.mo"
    committed = APP / "locale" / code / "LC_MESSAGES" / "django.mo"
    assert committed.exists(), f"run compilemessages in notifications/ and commit {committed}"
    with compiled.open("rb") as new, committed.open("rb") as old:
        assert gettext.GNUTranslations(old)._catalog == gettext.GNUTranslations(new)._catalog  # type: ignore[attr-defined]


@pytest.mark.parametrize("code", LANGUAGES)
def test_the_demo_catalog_is_complete(code: str) -> None:
    found = entries(ROOT / "project" / "locale" / code / "LC_MESSAGES" / "django.po")
    assert found and [msgid for msgid, translated, fuzzy in found if fuzzy or not translated] == []


def test_the_package_data_ships_the_compiled_messages() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["notifications"]
    shipped = {path for pattern in patterns for path in APP.glob(pattern)}
    for code in LANGUAGES:
        assert APP / "locale" / code / "LC_MESSAGES" / "django.mo" in shipped


def test_the_app_speaks_french_and_german() -> None:
    with translation.override("fr"):
        assert translation.gettext("Mark all read") == "Tout marquer comme lu"
    with translation.override("de"):
        assert translation.gettext("Mark all read") == "Alle als gelesen markieren"


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "words"), [("fr", "Saisissez une URL relative"), ("de", "Geben Sie eine relative URL")])
def test_the_demo_refuses_an_unsafe_link_in_the_users_language(client, code: str, words: str) -> None:
    from django.contrib.auth import get_user_model

    from notifications.models import Notification

    user = get_user_model().objects.create_user("sender")
    client.force_login(user)
    response = client.post(
        "/", {"recipient": f"user:{user.pk}", "verb": "hi", "level": "info", "url": "javascript:alert(1)"},
        HTTP_ACCEPT_LANGUAGE=code,
    )
    assert response.status_code == 200 and words in response.content.decode()
    assert not Notification.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("code", "words"), [("fr", "Personne ne l’a reçue"), ("de", "Niemand hat sie erhalten")])
def test_the_demo_says_in_the_users_language_that_an_empty_group_received_nothing(client, code: str, words: str) -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user("sender")
    empty = Group.objects.create(name="nobody")
    client.force_login(user)
    response = client.post(
        "/", {"recipient": f"group:{empty.pk}", "verb": "hi", "level": "info"}, HTTP_ACCEPT_LANGUAGE=code, follow=True,
    )
    assert words in response.content.decode()


def _js_strings() -> dict:
    """notifications.js's STRINGS, its English words, read from the script."""
    import json

    script = (APP / "static" / "notifications" / "notifications.js").read_text(encoding="utf-8")
    block = re.search(r"const STRINGS = (\{.*?\n  \});", script, flags=re.S)
    assert block, "const STRINGS not found in notifications.js"
    text = re.sub(r"//[^\n]*", "", block.group(1))
    text = re.sub(r"([{,]\s*)([A-Za-z]\w*)\s*:", r'\1"\2":', text)  # bare keys quoted
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", text))  # trailing commas dropped


@pytest.mark.parametrize("code", LANGUAGES)
def test_every_string_of_the_js_client_comes_from_the_catalog(code: str) -> None:
    """A word in notifications.js's STRINGS that client_strings() does not give stays English."""
    from notifications.templatetags.notifications import client_strings

    english = _js_strings()
    with translation.override(code):
        given = client_strings()
    assert set(given) == set(english)
    for key, words in english.items():
        if isinstance(words, dict) and "other" in words:  # a plural: the forms Intl.PluralRules asks for
            assert "other" in given[key] and set(given[key]) <= {"zero", "one", "two", "few", "many", "other"}, key
        elif isinstance(words, dict):
            assert set(given[key]) == set(words), key
    # Words that differ in French and German (the catalogs' completeness is checked above).
    for key in ("markRead", "archive", "snooze", "restore", "archived", "inbox", "archiveRead", "dismiss"):
        assert given[key] != english[key], f"{key} is English in {code}"
    assert all(given["status"][state] != english["status"][state] for state in english["status"])
    assert given["bellLabel"]["other"] != english["bellLabel"]["other"]


# What the app writes itself in an email and a push (not the kind's text, a
# project's): in the recipient's language, French and German.
DELIVERED_WORDS = {
    "fr": {"label": "Commentaires", "open": "L'ouvrir", "stop": "Ne plus recevoir ces e-mails",
           "digest": "2 nouvelles notifications", "all": "Toutes vos notifications"},
    "de": {"label": "Kommentare", "open": "Öffnen", "stop": "Diese E-Mails abbestellen",
           "digest": "2 neue Benachrichtigungen", "all": "Alle Ihre Benachrichtigungen"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("code", LANGUAGES)
def test_emails_and_push_payloads_speak_the_recipients_language(declare, settings, code: str) -> None:
    from django.contrib.auth import get_user_model
    from django.core import mail
    from django.test import Client
    from django.utils.translation import gettext_lazy

    from notifications import api, push, worker
    from notifications import mail as mails
    from notifications.kinds import Kind

    words = DELIVERED_WORDS[code]
    kind = declare(Kind("spoken", label=gettext_lazy("Comments"), channels={"in_app": True, "email": True}))
    settings.NOTIFICATIONS_USER_LANGUAGE = "last_name"  # a project's own field, here borrowed
    user = get_user_model().objects.create_user("marie", email="marie@example.com", last_name=code)
    (first,) = api.notify(user, "replied", kind="spoken", url="/posts/1/")
    (second,) = api.notify(user, "replied again", kind="spoken")
    worker.drain()

    message = mail.outbox[0]
    html = unescape(message.alternatives[0][0])
    assert f'lang="{code}"' in html
    for text in (words["open"], words["stop"], words["label"]):
        assert text in html, text
    assert words["stop"] in message.body and "Stop these emails" not in message.body + html

    assert mails.send_digest([first, second], [kind], user) == ""
    digest = mail.outbox[-1]
    assert digest.subject == words["digest"]
    assert f'lang="{code}"' in digest.alternatives[0][0]
    assert words["all"] in unescape(digest.alternatives[0][0]) and words["stop"] in digest.body

    assert push.payload(first, kind)["title"] == words["label"]
    assert push.digest_payload([first, second])["title"] == words["digest"]

    # The email's "stop" link opens a page in the language of who follows it.
    page = Client().get(message.extra_headers["List-Unsubscribe"].strip("<>"), HTTP_ACCEPT_LANGUAGE=code)
    assert page.status_code == 200 and f'lang="{code}"' in page.content.decode()
