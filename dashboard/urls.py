"""Dashboard pages: login/logout, the live experiment list, one experiment's control room."""

from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.experiment_list, name="experiment-list"),
    path("experiments/<str:experiment_id>/", views.experiment_detail, name="experiment-detail"),
]

auth_urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="registration/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
