from django.urls import path, register_converter

from digest.web import views

app_name = "digest"


class Direction:
    regex = "more|less"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(Direction, "direction")

urlpatterns = [
    path("", views.home, name="home"),
    path("preview/", views.preview, name="preview"),
    path("digest/<str:token>/", views.archived_digest, name="archive"),
    path("papers/<int:paper_id>/", views.paper, name="paper"),
    path("papers/<int:paper_id>/for/<str:token>/", views.paper_for_reader, name="paper_for_reader"),
    path("papers/<int:paper_id>/<direction:direction>/<str:token>/", views.rate, name="rate"),
    path("ratings/<str:token>/undo/<int:paper_id>/", views.undo_rating, name="undo_rating"),
    path("ratings/<str:token>/seed/", views.seed_ratings, name="seed_ratings"),
]
