"""A delivery as an email: its digest loaded in a few queries, composed, and serialized once."""

import functools
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.policy import Compat32

from django.core.mail.message import EmailMessage

from digest.delivery.composing import compose_digest, list_id_domain
from digest.matching import Match
from digest.models import DeliveredPaper, Delivery, Paper

# What composing reads from a paper (see composing.paper_block); the rest stays in the database.
COMPOSED_PAPER_FIELDS = [
    "title",
    "abstract",
    "authors",
    "author_count",
    "arxiv_id",
    "url",
    "pdf_url",
    "upvotes",
]


def message_id_for(delivery: Delivery) -> str:
    """The same Message-ID on every attempt of a delivery, never reused by another one."""
    stamp = delivery.created_at.strftime("%Y%m%d%H%M%S%f")
    return f"<digest.{delivery.pk}.{stamp}@{list_id_domain()}>"


@dataclass(frozen=True)
class Digest:
    """A delivery with what composing it needs: its matches (best first) and their papers."""

    delivery: Delivery
    matches: list[Match]
    papers: Mapping[int, Paper]
    hidden: tuple[int, ...] = ()  # papers planned for it that the editors hid since


def digests_for(deliveries: Sequence[Delivery]) -> list[Digest]:
    """Two queries whatever the number of deliveries; a paper shared by many digests is loaded
    once. A paper hidden since the digest was planned is left out of it."""
    rows = list(
        DeliveredPaper.objects.filter(delivery__in=[delivery.pk for delivery in deliveries])
        .order_by("delivery_id", "position")
        .values_list("delivery_id", "paper_id", "score", "pinned", "topic", "matched_terms", "why")
    )
    papers = Paper.objects.only(*COMPOSED_PAPER_FIELDS, "hidden").in_bulk({row[1] for row in rows})
    matches: dict[int, list[Match]] = {delivery.pk: [] for delivery in deliveries}
    hidden: dict[int, list[int]] = {delivery.pk: [] for delivery in deliveries}
    for delivery_id, paper_id, score, pinned, topic, terms, why in rows:
        if papers[paper_id].hidden:
            hidden[delivery_id].append(paper_id)
        else:
            matches[delivery_id].append(Match(paper_id, score, pinned, topic, tuple(terms), why))
    return [
        Digest(delivery, matches[delivery.pk], papers, tuple(hidden[delivery.pk]))
        for delivery in deliveries
    ]


def load_digests(delivery_ids: Iterable[int]) -> dict[int, Digest]:
    """The deliveries with their subscriber, matches and papers, in three queries."""
    deliveries = Delivery.objects.select_related("subscriber").in_bulk(list(delivery_ids))
    return {digest.delivery.pk: digest for digest in digests_for(list(deliveries.values()))}


def compose(digest: Digest) -> EmailMessage:
    delivery = digest.delivery
    return compose_digest(
        delivery.subscriber,
        digest.matches,
        period=delivery.period,
        papers=digest.papers,
        message_id=message_id_for(delivery),
    )


def delivery_message(delivery: Delivery) -> EmailMessage:
    return compose(digests_for([delivery])[0])


def serialize_now(message: EmailMessage) -> None:
    """Build the MIME message and its bytes here, once: Django's SMTP backend asks for them
    (message().as_bytes(linesep="\\r\\n")) in the sender thread, which then only waits on the
    server instead of competing with composing for the interpreter."""
    mime = message.message()
    mime.policy = SHORT_HEADERS_AS_IS
    if mime.is_multipart():
        mime.set_boundary(fresh_boundary(message))
    mime.as_bytes = functools.cache(mime.as_bytes)
    mime.as_bytes(linesep="\r\n")
    message.message = lambda: mime


class ShortHeadersAsIs(Compat32):
    """Python's compat32 email policy, which Django's messages use, except that a header that
    fits on its line in printable ASCII is written as it is. Compat32 runs every header through
    email.header.Header, which leaves such a value unchanged and costs a tenth of serializing a
    digest."""

    def _fold(self, name: str, value, sanitize: bool) -> str:
        limit = self.max_line_length or 78
        if (
            isinstance(value, str)
            and len(name) + len(value) + 2 <= limit
            and value.isascii()
            and value.isprintable()
        ):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


SHORT_HEADERS_AS_IS = ShortHeadersAsIs()


def fresh_boundary(message: EmailMessage) -> str:
    """A MIME boundary that none of the message's parts contains. The standard library picks a
    random one and then compiles a regular expression per message to prove it unused, which
    costs a sixth of serializing a digest; a 128-bit random token checked with `in` is enough."""
    parts = [message.body, *(content for content, _ in getattr(message, "alternatives", []))]
    while True:
        boundary = f"=={secrets.token_hex(16)}=="
        if not any(boundary in part for part in parts):
            return boundary
