"""
django-notifications-hq's slugs: the number its URLs carry for a notification
(its id plus a constant). Ids survive the swap, so hq's links keep working.
"""

SLUG_OFFSET = 110909


def id2slug(notification_id: int) -> int:
    return int(notification_id) + SLUG_OFFSET


def slug2id(slug: int | str) -> int:
    """The id behind an hq slug; ``ValueError`` when it is not an integer."""
    return int(slug) - SLUG_OFFSET
