from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Post
from .notifying import notify_reply


@receiver(post_save, sender=Post)
def on_post(sender, instance, created, **kwargs):
    if created:
        notify_reply(instance)

