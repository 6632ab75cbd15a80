from django.apps import AppConfig
from django.db import connections
from django.db.models.signals import post_delete, post_migrate, post_save


def _install_default_schedule(sender, using: str = "default", **kwargs) -> None:
    # After `migrate`, so an editor sees the periodic tasks in the admin before beat ever ran.
    if "django_celery_beat_periodictask" not in connections[using].introspection.table_names():
        return
    from digest.delivery.schedule import install_default_schedule

    install_default_schedule()


class DigestConfig(AppConfig):
    name = "digest"
    verbose_name = "Digest"

    def ready(self) -> None:
        post_migrate.connect(_install_default_schedule, sender=self)
        from digest.models import Paper
        from digest.web.preview import forget_papers

        # An editor's change to a paper's text reaches the home page's preview at once.
        post_save.connect(forget_papers, sender=Paper, dispatch_uid="preview-paper-saved")
        post_delete.connect(forget_papers, sender=Paper, dispatch_uid="preview-paper-deleted")
        from digest.web.views import ratings_section, reader_confirmed_receiver, topics_saved
        from subscriptions.preference_sections import register_preference_section

        register_preference_section("ratings", ratings_section)
        from digest.web.sign_up_likes import ticked_papers_section
        from subscriptions.models import Subscriber
        from subscriptions.preference_sections import register_confirmation_section
        from subscriptions.signals import reader_confirmed

        register_confirmation_section("ticked-papers", ticked_papers_section)
        # Receivers in an edge module: they schedule work after commit (digest.tasks).
        reader_confirmed.connect(reader_confirmed_receiver, dispatch_uid="digest-reader-confirmed")
        post_save.connect(topics_saved, sender=Subscriber, dispatch_uid="digest-topics-saved")
