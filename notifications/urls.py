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
    path("api/hub/", views.hub_stats, name="hub"),
    path("api/preferences/", views.preference_matrix, name="preferences"),
    path("preferences/", views.preference_form, name="preferences-form"),
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
