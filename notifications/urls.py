from django.urls import path, re_path

from . import hq_views, views

app_name = "notifications"

urlpatterns = [
    path("stream/", views.stream, name="stream"),
    path("api/", views.notification_list, name="list"),
    path("api/unread-count/", views.unread_count, name="unread-count"),
    path("api/read-all/", views.mark_all_read, name="read-all"),
    path("api/<int:pk>/read/", views.mark_read, name="read"),
    path("api/<int:pk>/unread/", views.mark_unread, name="mark-unread"),
    path("api/<int:pk>/delete/", views.delete, name="remove"),
    path("api/seen/", views.mark_seen, name="seen"),
    path("api/archive-read/", views.archive_read, name="archive-read"),
    path("api/<int:pk>/archive/", views.archive, name="archive"),
    path("api/<int:pk>/unarchive/", views.unarchive, name="unarchive"),
    path("api/<int:pk>/snooze/", views.snooze, name="snooze"),
    path("api/hub/", views.hub_stats, name="hub"),
    path("api/preferences/", views.preference_matrix, name="preferences"),
    path("preferences/", views.preference_form, name="preferences-form"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("api/push/key/", views.push_key, name="push-key"),
    path("api/push/subscribe/", views.push_subscribe, name="push-subscribe"),
    path("api/push/unsubscribe/", views.push_unsubscribe, name="push-unsubscribe"),
    path("api/push/read/<str:token>/", views.push_read, name="push-read"),
    # django-notifications-hq's names and paths.
    path("", hq_views.all_notifications, name="all"),
    path("unread/", hq_views.unread_notifications, name="unread"),
    path("mark-all-as-read/", hq_views.mark_all_as_read, name="mark_all_as_read"),
    re_path(r"^mark-as-read/(?P<slug>\d+)/$", hq_views.mark_as_read, name="mark_as_read"),
    re_path(r"^mark-as-unread/(?P<slug>\d+)/$", hq_views.mark_as_unread, name="mark_as_unread"),
    re_path(r"^delete/(?P<slug>\d+)/$", hq_views.delete, name="delete"),
    path("api/unread_count/", hq_views.live_unread_notification_count, name="live_unread_notification_count"),
    path("api/all_count/", hq_views.live_all_notification_count, name="live_all_notification_count"),
    path("api/unread_list/", hq_views.live_unread_notification_list, name="live_unread_notification_list"),
    re_path(r"^api/all_list/", hq_views.live_all_notification_list, name="live_all_notification_list"),
]
