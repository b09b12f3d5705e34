"""The JSON API through Django's test client."""

import pytest
from django.test import Client

from notifications import api
from notifications.models import Notification

pytestmark = pytest.mark.django_db

LIST = "/notifications/api/"


@pytest.fixture
def client_alice(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def csrf_post(client, path):
    """POST with a valid CSRF cookie and header, as the JS client does."""
    client.get(LIST)  # any page; then set a token explicitly
    token = "a" * 32
    client.cookies["csrftoken"] = token
    return client.post(path, HTTP_X_CSRFTOKEN=token)


def test_list_is_newest_first_with_unread_filter_and_pagination(client_alice, alice):
    ids = [api.notify(alice, f"n{i}")[0].pk for i in range(5)]
    api.mark_read(alice, [ids[0], ids[1]])
    body = client_alice.get(LIST, {"page_size": 2}).json()
    assert [n["id"] for n in body["results"]] == [ids[4], ids[3]]
    assert body["has_next"] is True and body["unread_count"] == 3 and body["cursor"]
    page3 = client_alice.get(LIST, {"page_size": 2, "page": 3}).json()
    assert [n["id"] for n in page3["results"]] == [ids[0]] and page3["has_next"] is False
    unread = client_alice.get(LIST, {"unread": "1"}).json()["results"]
    assert [n["id"] for n in unread] == [ids[4], ids[3], ids[2]]


@pytest.mark.parametrize(
    "params",
    [{"page": "0"}, {"page": "x"}, {"page": "-1"}, {"page_size": "1000"}, {"page_size": "٣"}, {"unread": "maybe"}],
)
def test_bad_query_parameters_are_400_with_a_message(client_alice, params):
    response = client_alice.get(LIST, params)
    assert response.status_code == 400
    assert response.json()["error"]


def test_list_uses_a_constant_number_of_queries(client_alice, alice, django_assert_max_num_queries):
    for i in range(30):
        api.notify(alice, f"n{i}")
    api.broadcast("everyone")
    with django_assert_max_num_queries(8) as small:
        client_alice.get(LIST, {"page_size": 1})
    with django_assert_max_num_queries(len(small.captured_queries)):
        client_alice.get(LIST, {"page_size": 100})


def test_unread_count_endpoint(client_alice, alice):
    api.notify(alice, "a")
    api.broadcast("b")
    assert client_alice.get("/notifications/api/unread-count/").json() == {"unread_count": 2}


def test_mark_read_unread_delete_and_read_all(client_alice, alice):
    a, b = api.notify(alice, "a")[0], api.notify(alice, "b")[0]
    response = csrf_post(client_alice, f"/notifications/api/{a.pk}/read/")
    assert response.status_code == 200 and response.json() == {"ids": [a.pk], "unread_count": 1}
    assert csrf_post(client_alice, f"/notifications/api/{a.pk}/unread/").json()["unread_count"] == 2
    assert csrf_post(client_alice, "/notifications/api/read-all/").json() == {"marked": 2, "unread_count": 0}
    assert csrf_post(client_alice, f"/notifications/api/{b.pk}/delete/").status_code == 200
    assert Notification.objects.get(pk=b.pk).deleted


def test_state_changes_need_post_and_csrf(client_alice, alice):
    a = api.notify(alice, "a")[0]
    assert client_alice.get(f"/notifications/api/{a.pk}/read/").status_code == 405
    assert client_alice.post(f"/notifications/api/{a.pk}/read/").status_code == 403  # no CSRF token
    assert client_alice.get("/notifications/api/read-all/").status_code == 405
    assert Notification.objects.get(pk=a.pk).unread


def test_unknown_ids_are_404_json(client_alice):
    response = csrf_post(client_alice, "/notifications/api/999999/read/")
    assert response.status_code == 404 and response.json()["error"]


def test_anonymous_api_is_403_json_not_a_redirect():
    response = Client().get(LIST)
    assert response.status_code == 403 and "error" in response.json()
