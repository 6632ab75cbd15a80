from datetime import date

from django.urls import path, register_converter

from digest.web import daily, feeds, site, views

app_name = "digest"


class Direction:
    regex = "more|less"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class IsoDate:
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> date:
        return date.fromisoformat(value)  # ValueError (2026-02-30): no match, a 404

    def to_url(self, value: date) -> str:
        return value.isoformat()


register_converter(Direction, "direction")
register_converter(IsoDate, "isodate")

urlpatterns = [
    path("", views.home, name="home"),
    path("preview/", views.preview, name="preview"),
    path("digest/<str:token>/", views.archived_digest, name="archive"),
    path("favicon.ico", site.favicon, name="favicon"),
    path("today/", daily.today, name="today"),
    path("archive/", daily.archive, name="archive_days"),
    path("archive/<isodate:day>/", daily.archive_day, name="archive_day"),
    path("feed/", feeds.DayFeed(), name="feed"),
    path("papers/<int:paper_id>/", views.paper, name="paper"),
    path("papers/<int:paper_id>/for/<str:token>/", views.paper_for_reader, name="paper_for_reader"),
    path("papers/<int:paper_id>/<direction:direction>/<str:token>/", views.rate, name="rate"),
    path("ratings/<str:token>/undo/<int:paper_id>/", views.undo_rating, name="undo_rating"),
    path("ratings/<str:token>/seed/", views.seed_ratings, name="seed_ratings"),
]
