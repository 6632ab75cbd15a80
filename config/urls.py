from django.contrib import admin
from django.urls import include, path

from config.health import healthz
from subscriptions.webhooks import guarded_urlpatterns

handler500 = "digest.web.site.server_error"  # the styled page, with its CSP nonce

admin.site.site_header = "Paperboy desk"
admin.site.site_title = "Paperboy desk"
admin.site.index_title = "Dashboard"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("anymail/", include((guarded_urlpatterns(), "anymail"))),
    path("", include("subscriptions.urls")),
    path("", include("digest.urls")),
]
