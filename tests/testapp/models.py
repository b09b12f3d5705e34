"""Models of a pretend third-party app that publishes notifications on save."""

from django.conf import settings
from django.db import models

from notifications.api import notify_on_save


class Article(models.Model):
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=100)
    published = models.BooleanField(default=False)
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="+", blank=True)

    def __str__(self):
        return self.title


@notify_on_save(
    recipient=lambda c: c.article.author,
    verb="commented on your article",
    actor=lambda c: c.author,
    target=lambda c: c.article,
    description=lambda c: c.text,
)
class Comment(models.Model):
    article = models.ForeignKey(Article, on_delete=models.CASCADE)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()


notify_on_save(
    Article,
    recipient=lambda a: a.watchers.all(),
    verb="published",
    on="update",
    condition=lambda a: a.published,
    actor=lambda a: a.author,
    level="success",
)
