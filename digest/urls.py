from django.urls import path

from digest import views

app_name = "digest"

urlpatterns = [
    path("", views.home, name="home"),
]
