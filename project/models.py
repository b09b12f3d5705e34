from django.db import models


class Post(models.Model):
    """Something to comment on: the target the demo's comments are grouped by."""

    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title
