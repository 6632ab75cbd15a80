"""The site's URLs plus one view that fails, to see the 500 page a reader would get."""

from django.urls import path

from config.urls import handler500
from config.urls import urlpatterns as site_urlpatterns


def fails(request):
    raise RuntimeError("the database went away")


urlpatterns = [path("fails/", fails), *site_urlpatterns]
__all__ = ["handler500", "urlpatterns"]
