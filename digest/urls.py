from django.urls import path

from digest import views

app_name = "digest"

urlpatterns = [
    path("", views.home, name="home"),
    path("preview/", views.preview, name="preview"),
    path("digest/<str:token>/", views.archived_digest, name="archive"),
]
