from django.contrib import admin
from django.urls import include, path

from config.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("anymail/", include("anymail.urls")),
    path("", include("subscriptions.urls")),
    path("", include("digest.urls")),
]
