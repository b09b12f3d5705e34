"""Two worker processes racing over the members of open groups send one email per group."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from notifications import api
from notifications.preferences import set_preferences

from .test_away_worker import racing_workers, sent

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()


def test_two_workers_racing_over_a_groups_members_send_it_one_email(tmp_path):
    with racing_workers(tmp_path):
        users = [User.objects.create_user(f"racer{i}", email=f"racer{i}@example.com") for i in range(15)]
        for user in users:
            # Comments group by target; their email (at once) is off unless chosen.
            set_preferences(user, [{"kind": "comment", "channel": "email", "enabled": True}])
            for _ in range(4):
                api.notify(user, "commented", target=user, kind="comment")
    assert sorted(to for _, to in sent(tmp_path)) == sorted(u.email for u in users)
