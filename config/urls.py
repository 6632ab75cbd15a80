from django.contrib import admin
from django.urls import include, path

from config.health import healthz
from subscriptions.webhooks import guarded_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("anymail/", include((guarded_urlpatterns(), "anymail"))),
    path("", include("subscriptions.urls")),
    path("", include("digest.urls")),
]
