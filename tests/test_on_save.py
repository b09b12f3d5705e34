"""Declarative publishing on model saves (notify_on_save)."""

import pytest
from django.contrib.auth import get_user_model

from notifications.api import notify_on_save
from notifications.models import Notification
from tests.testapp.models import Article, Comment

pytestmark = pytest.mark.django_db


@pytest.fixture
def users():
    User = get_user_model()
    return User.objects.create_user("author"), User.objects.create_user("reader")


def test_decorated_model_notifies_on_create_only(users):
    author, reader = users
    article = Article.objects.create(author=author, title="Hello")
    comment = Comment.objects.create(article=article, author=reader, text="Nice!")
    (row,) = Notification.objects.all()
    assert (row.recipient, row.verb, row.actor, row.target, row.description) == (
        author, "commented on your article", reader, article, "Nice!"
    )
    comment.text = "edited"
    comment.save()
    assert Notification.objects.count() == 1


def test_registration_call_with_condition_and_queryset_recipient(users):
    author, reader = users
    article = Article.objects.create(author=author, title="Draft")
    article.watchers.add(reader)
    article.save()  # not published: condition false
    assert not Notification.objects.exists()
    article.published = True
    article.save()
    (row,) = Notification.objects.all()
    assert (row.recipient, row.verb, row.level, row.actor) == (reader, "published", "success", author)


def test_empty_recipient_sends_nothing(users):
    author, _ = users
    article = Article.objects.create(author=author, title="Nobody watches")
    article.published = True
    article.save()
    assert not Notification.objects.exists()


def test_unknown_option_is_a_clear_error():
    with pytest.raises(ValueError, match="allowed: recipient, verb, on, condition"):
        notify_on_save(Article, recipient=lambda a: a.author, verb="x", colour="red")
    with pytest.raises(ValueError, match="'create', 'update', 'save'"):
        notify_on_save(Article, recipient=lambda a: a.author, verb="x", on="delete")
