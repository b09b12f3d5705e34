from django.contrib import admin

from .models import PublicNotification


@admin.register(PublicNotification)
class PublicNotificationAdmin(admin.ModelAdmin):
    list_display = ("verb", "recipient", "timestamp")
    list_filter = ("timestamp", "emailed", "public")
    ordering = ("-timestamp",)
    date_hierarchy = "timestamp"
