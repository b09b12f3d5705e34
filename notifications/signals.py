"""
Signals of the notifications app. This module holds only ``Signal`` objects.
"""

from django.dispatch import Signal

# Send this to create notifications, in django-notifications-hq's form:
#   notify.send(actor, recipient=user_or_group_or_users, verb="replied",
#               action_object=..., target=..., level="info", description="...",
#               public=True, timestamp=None, **extra)
# ``sender`` is the actor; ``public``, ``emailed``, ``unread``, ``deleted`` and
# ``url`` set those columns, other extra keyword arguments are stored in ``data``;
# any level of up to 20 characters. The app's receiver returns the list of
# created notifications (so ``send()`` returns ``[(receiver, [notifications])]``).
notify = Signal()

# Sent after the transaction that created notifications commits.
# Arguments: ``sender`` (the Notification class), ``notifications`` (list).
notifications_created = Signal()

# Sent after notifications were marked read (or unread) and that committed.
# Arguments: ``sender`` (the Notification class), ``user``, ``ids`` (list of
# notification ids, or the string "all"), ``unread`` (bool: marked unread).
notifications_read = Signal()
