"""Sections other apps add to a reader's preference and confirmation pages, without this app
knowing them.

`subscriptions` never imports `digest`; the digest app registers a function here (in its
AppConfig.ready) that renders its part of the page, e.g. the papers the reader rated. Each gets
the request, the reader and the page's signed token, and returns HTML; one that fails is logged
and left out, never taking the page down.
"""

import logging
from collections.abc import Callable

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

from subscriptions.models import Subscriber

logger = logging.getLogger(__name__)

Section = Callable[[HttpRequest, Subscriber, str], str]
_sections: dict[str, Section] = {}


def register_preference_section(name: str, section: Section) -> None:
    """Add (or replace) the section called `name`; sections render in registration order."""
    _sections[name] = section


def render_preference_sections(
    request: HttpRequest, subscriber: Subscriber, token: str
) -> list[SafeString]:
    rendered = []
    for name, section in _sections.items():
        try:
            rendered.append(mark_safe(section(request, subscriber, token)))
        except Exception:
            logger.exception(
                "preference page section %r failed for subscriber %s", name, subscriber.pk
            )
    return rendered


ConfirmationSection = Callable[[HttpRequest, Subscriber], str]
_confirmation_sections: dict[str, ConfirmationSection] = {}


def register_confirmation_section(name: str, section: ConfirmationSection) -> None:
    """Add (or replace) a section of the "You're subscribed" page, e.g. the papers ticked at
    sign-up; sections render in registration order."""
    _confirmation_sections[name] = section


def render_confirmation_sections(request: HttpRequest, subscriber: Subscriber) -> list[SafeString]:
    rendered = []
    for name, section in _confirmation_sections.items():
        try:
            rendered.append(mark_safe(section(request, subscriber)))
        except Exception:
            logger.exception(
                "confirmation page section %r failed for subscriber %s", name, subscriber.pk
            )
    return rendered
