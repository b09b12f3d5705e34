from django.urls import path

from . import views

app_name = "notifications"

urlpatterns = [
    path("stream/", views.stream, name="stream"),
    path("api/", views.notification_list, name="list"),
    path("api/unread-count/", views.unread_count, name="unread-count"),
    path("api/read-all/", views.mark_all_read, name="read-all"),
    path("api/<int:pk>/read/", views.mark_read, name="read"),
    path("api/<int:pk>/unread/", views.mark_unread, name="unread"),
    path("api/<int:pk>/delete/", views.delete, name="delete"),
    path("api/hub/", views.hub_stats, name="hub"),
    path("api/preferences/", views.preference_matrix, name="preferences"),
    path("preferences/", views.preference_form, name="preferences-form"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("api/push/key/", views.push_key, name="push-key"),
    path("api/push/subscribe/", views.push_subscribe, name="push-subscribe"),
    path("api/push/unsubscribe/", views.push_unsubscribe, name="push-unsubscribe"),
    path("api/push/read/<str:token>/", views.push_read, name="push-read"),
]
