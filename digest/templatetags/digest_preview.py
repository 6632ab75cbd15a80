"""`{% digest_preview subscriber %}`: the subscription pages (rendered by `subscriptions`, which
never imports `digest`) show the digest a reader's saved topics would bring now."""

from django import template
from django.utils.safestring import SafeString

from digest.web.preview import preview_html
from subscriptions.models import Subscriber

register = template.Library()


@register.simple_tag
def digest_preview(subscriber: Subscriber, heading: str = "") -> SafeString:
    return preview_html(
        subscriber.topics,
        limit=subscriber.papers_per_digest,
        heading=heading or "What your digest would hold now",
        no_script_hint=False,
        tickable=False,
    )
