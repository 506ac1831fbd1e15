"""Event history and socket tickets under /api/research/."""

from django.urls import path

from realtime.api.views import EventListView, WsTicketView

urlpatterns = [
    path("events", EventListView.as_view(), name="events"),
    path("ws-ticket", WsTicketView.as_view(), name="ws-ticket"),
]
