"""
What ``manage.py notifications_hq_check`` looks for: usages of
django-notifications-hq in a project's Python files and templates that behave
differently here, each with what to write instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SKIP_DIRS = frozenset(
    {".git", ".hg", ".tox", ".nox", ".venv", "venv", "env", "node_modules", "site-packages",
     "__pycache__", "build", "dist", "static", "staticfiles", "media"}
)
TEMPLATE_SUFFIXES = (".html", ".htm", ".txt", ".jinja", ".jinja2", ".j2")

_MUTATIONS = r"notifications:(?:mark_as_read|mark_as_unread|mark_all_as_read|delete)\b"


@dataclass(frozen=True)
class Rule:
    code: str
    pattern: re.Pattern[str]
    advice: str
    python: bool = True
    templates: bool = False


RULES = (
    Rule(
        "get-mutation",
        re.compile(r"""\{%\s*url\s+["']""" + _MUTATIONS),
        "hq's mark and delete URLs take POST with a CSRF token here: make the link a "
        '<form method="post"> with {% csrf_token %} (or set NOTIFICATIONS_HQ_GET_MUTATIONS = True '
        "until it is one).",
        python=False,
        templates=True,
    ),
    Rule(
        "get-mutation",
        re.compile(r"""\breverse(?:_lazy)?\(\s*["']""" + _MUTATIONS + r"|\bredirect\(\s*[\"']" + _MUTATIONS),
        "hq's mark and delete URLs take POST with a CSRF token here: a link or redirect to it "
        "(a GET) answers 405; POST to it, or call notification.mark_as_read() / "
        "notifications.api.mark_read() in your view.",
    ),
    Rule(
        "data-contains-text",
        re.compile(r"""\bdata__contains\s*=\s*[rbuRBU]?["']"""),
        "hq stored data as text, so this was a substring search; data is JSON here and a "
        "string raises FieldError. Look a key up: data__<key>=value, data__has_key=\"<key>\", "
        "or data__contains={\"<key>\": value}.",
    ),
    Rule(
        "never-null",
        re.compile(
            r"\b(?:data|description|actor_object_id|target_object_id|action_object_object_id)"
            r"__isnull\b"
        ),
        "this column is never NULL here: an empty one holds \"\" ({} for data). Compare with "
        "the empty value instead (description=\"\", data={}).",
    ),
    Rule(
        "abstract-model",
        re.compile(r"\bAbstractNotification\b"),
        "a notification model of your own is not supported: the model is "
        "notifications.models.Notification. Keep extra values in Notification.data or in a "
        "model of your own with a ForeignKey to notifications.Notification.",
    ),
    Rule(
        "swapper",
        re.compile(r"^\s*(?:import\s+swapper\b|from\s+swapper\b)|\bswapper\.\w+\("),
        "the notification model is not swappable here: import "
        "notifications.models.Notification (swapper.load_model returns it only while "
        "NOTIFICATIONS_NOTIFICATION_MODEL is unset or \"notifications.Notification\").",
    ),
    Rule(
        "swapped-model",
        re.compile(
            r"""\bNOTIFICATIONS_NOTIFICATION_MODEL\s*=\s*["'](?!notifications\.Notification["'])"""
        ),
        "another notification model is not supported (system check notifications.E101): remove "
        "the setting and move its extra fields into Notification.data or a model of your own.",
    ),
)


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    code: str
    text: str
    advice: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.code}] {self.text}\n    {self.advice}"


def files(roots: Iterable[Path]) -> Iterator[Path]:
    """The Python files and templates under ``roots``, outside virtualenvs, VCS and build folders."""
    for root in roots:
        if root.is_file():
            yield root
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]) and (
                path.suffix == ".py" or path.suffix in TEMPLATE_SUFFIXES
            ):
                yield path


def scan(roots: Iterable[Path]) -> list[Finding]:
    """Every line under ``roots`` that one of ``RULES`` matches, in file and line order."""
    found = []
    for path in files(roots):
        python = path.suffix == ".py"
        rules = [r for r in RULES if (r.python if python else r.templates)]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for rule in rules:
                if rule.pattern.search(line):
                    found.append(Finding(path, number, rule.code, line.strip(), rule.advice))
    return found
