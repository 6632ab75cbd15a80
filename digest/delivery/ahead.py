"""Composing the next digest while the sender waits on the database and the ESP's API.

Digests are composed in a thread of their own, one ahead of the one being handed over: the
interpreter is free while sending.send_deliveries waits for the fence's commit and its sender
thread for the server, and composing (CPU only) fills that time instead of following it.
Composing reads no database (a chunk's deliveries, readers and papers are loaded before), and the
thread is held to it: a query there fails the digest as "composing failed". It composes in the
language and time zone of the thread that sends. (Over SMTP the next digest is composed in the
sending thread itself: smtp_sending says why.)
"""

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from django.core.mail.message import EmailMessage
from django.db import connection
from django.utils import timezone, translation

from digest.delivery.messages import Digest, compose


class ComposingQueried(RuntimeError):
    """Composing asked the database for something the chunk's loading left out."""


def _no_queries(execute, sql, params, many, context):
    raise ComposingQueried(f"composing a digest reads no database: {sql[:200]}")


def _compose(digest: Digest, *, language: str | None, zone) -> EmailMessage:
    with (
        translation.override(language),
        timezone.override(zone),
        connection.execute_wrapper(_no_queries),
    ):
        return compose(digest)


def composed_ahead(digests: Iterable[Digest]) -> Iterator[tuple[Digest, Future]]:
    """Each digest with its message being composed (a Future), the next one already under way."""
    language, zone = translation.get_language(), timezone.get_current_timezone()
    pending: deque[tuple[Digest, Future]] = deque()
    with ThreadPoolExecutor(max_workers=1) as composer:
        for digest in digests:
            work = composer.submit(_compose, digest, language=language, zone=zone)
            pending.append((digest, work))
            if len(pending) > 1:
                yield pending.popleft()
        while pending:
            yield pending.popleft()
