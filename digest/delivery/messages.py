"""A delivery as an email: its digest loaded in a few queries, composed, and serialized once."""

import binascii
import functools
import os
import random
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.policy import Compat32

from django.core.mail.message import EmailAlternative, EmailMessage

from config.emails import Email, subject_header
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
    """Build the message's bytes here, once (wire_bytes gives them): the sender thread then only
    waits on the server instead of competing with composing for the interpreter. A digest's
    bytes are written directly (_digest_wire); message() still returns its MIME, built when asked
    for, whose as_bytes(linesep="\\r\\n") are those bytes."""
    boundary = fresh_boundary(message)
    build = message.message
    wire = _digest_wire(message, boundary)
    if wire is None:  # not a digest's shape
        mime = _mime(message, build, boundary)
        wire = mime.as_bytes(linesep="\r\n")
        message.message = lambda: mime
    else:
        message.message = functools.cache(lambda: _mime(message, build, boundary, wire=wire))
    message.wire = wire


def wire_bytes(message: EmailMessage) -> bytes:
    """The message as it goes to an SMTP server (CRLF line ends)."""
    wire = getattr(message, "wire", None)
    return wire if wire is not None else message.message().as_bytes(linesep="\r\n")


def _mime(message: EmailMessage, build, boundary: str, *, wire: bytes | None = None):
    """The MIME message as `build` (Django's message()) makes it, its text parts encoded by
    binascii, with `boundary`; as_bytes(linesep="\\r\\n") gives `wire` when it is known."""
    plain = message.body and not message.attachments  # a digest's shape; else Django's own
    mime = _quoted_printable_mime(message, build) if plain else build()
    mime.policy = SHORT_HEADERS_AS_IS
    if mime.is_multipart():
        mime.set_boundary(boundary)
    generate = mime.as_bytes
    if wire is None:
        wire = _wire_bytes(mime) if plain else generate(linesep="\r\n")

    def as_bytes(unixfrom: bool = False, linesep: str = "\n") -> bytes:
        return wire if linesep == "\r\n" and not unixfrom else generate(unixfrom, linesep)

    mime.as_bytes = as_bytes
    return mime


_TEXT_PART_HEADERS = (
    'Content-Type: text/{}; charset="utf-8"\r\n'
    "MIME-Version: 1.0\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
)


def _digest_wire(message: EmailMessage, boundary: str) -> bytes | None:
    """A digest's bytes as Django's message() and the generator would write them (a text part
    and an HTML alternative, quoted-printable), without building the MIME objects, which costs
    as much as the rest of serializing; None for any other shape, or a header value Django
    would refuse or encode, left to them."""
    headers = _digest_headers(message)
    if headers is None:
        return None
    fold = SHORT_HEADERS_AS_IS_CRLF.fold_binary
    top = [fold("Content-Type", f'multipart/alternative; boundary="{boundary}"')]
    top += [fold(name, value) for name, value in [("MIME-Version", "1.0"), *headers]]
    parts = [
        _TEXT_PART_HEADERS.format(subtype).encode() + _crlf(_quoted_printable(text)).encode()
        for subtype, text in (("plain", message.body), ("html", message.alternatives[0].content))
    ]
    dash = f"--{boundary}".encode()
    return b"".join(
        [*top, b"\r\n", dash, b"\r\n", parts[0], b"\r\n", dash, b"\r\n", parts[1]]
        + [b"\r\n", dash, b"--\r\n"]
    )


def _digest_headers(message: EmailMessage) -> list[tuple[str, str]] | None:
    """The headers after Content-Type and MIME-Version, as Django's message() sets them."""
    shaped = (
        isinstance(message, Email)
        and message.body
        and not message.attachments
        and len(message.alternatives) == 1
        and message.alternatives[0].mimetype == "text/html"
        and message.to
        and not (message.cc or message.bcc or message.reply_to)
        and message.encoding in (None, "utf-8")
        and {"date", "message-id"} <= {name.lower() for name in message.extra_headers}
    )
    if not shaped or {name.lower() for name in message.extra_headers} & _SET_BY_DJANGO:
        return None
    headers = [
        ("Subject", str(message.subject)),
        ("From", message.from_email),
        ("To", ", ".join(str(address) for address in message.to)),
        *message.extra_headers.items(),
    ]
    values = [value for _, value in headers]
    if not all(isinstance(value, str) and value.isascii() for value in values[1:]):
        return None  # Django's forbid_multi_line_headers encodes it
    if any("\n" in value or "\r" in value for value in values):
        return None  # and refuses this
    headers[0] = ("Subject", subject_header(values[0]))
    return headers


# Header names Django's message() takes from the message's own fields when they are given.
_SET_BY_DJANGO = {"from", "to", "cc", "reply-to"}


def _quoted_printable(text: str) -> str:
    return binascii.b2a_qp(text.encode("utf-8", "surrogateescape")).decode("ascii")


_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# Seeded once per process from the system's randomness: a system call per marker and boundary
# hands the interpreter to the sender thread and waits to get it back. Markers never leave the
# process; a boundary is checked against the message anyway (fresh_boundary).
_MARKERS = random.Random(secrets.randbits(128))
_BOUNDARIES = random.Random(secrets.randbits(128))


def _reseed() -> None:
    for generator in (_MARKERS, _BOUNDARIES):
        generator.seed(secrets.randbits(128))


os.register_at_fork(after_in_child=_reseed)  # forked workers do not share a sequence


def _random_hex(generator: random.Random) -> str:
    return f"{generator.getrandbits(128):032x}"


def _wire_bytes(mime) -> bytes:
    """What mime.as_bytes(linesep="\\r\\n") returns, in a tenth of the time: the generator
    writes the headers and boundaries around a marker per part, and each part's encoded body
    (ASCII) goes in its marker's place with its line breaks made CRLF, as the generator would,
    instead of being written line by line."""
    parts = mime.get_payload() if mime.is_multipart() else [mime]
    bodies = [part.get_payload() for part in parts]
    markers = [f"=={_random_hex(_MARKERS)}==" for _ in parts]
    for part, marker in zip(parts, markers, strict=True):
        part.set_payload(marker)
    try:
        skeleton = mime.as_bytes(linesep="\r\n")
    finally:
        for part, body in zip(parts, bodies, strict=True):
            part.set_payload(body)
    for marker, body in zip(markers, bodies, strict=True):
        skeleton = skeleton.replace(marker.encode(), _crlf(body).encode())
    return skeleton


def _crlf(text: str) -> str:
    if "\r" in text:  # rare: a lone CR, or CRLF already, which binascii leaves as it found them
        return "\r\n".join(_LINE_BREAK.split(text))
    return text.replace("\n", "\r\n")


def _quoted_printable_mime(message: EmailMessage, build):
    """The message as Django builds it, with each text part quoted-printable encoded by binascii
    (C) instead of the standard library's pure-Python encoder, which costs half of serializing a
    digest. Django builds the headers and the structure around placeholder bodies."""
    texts = [message.body, *(alternative.content for alternative in message.alternatives)]
    body, alternatives = message.body, message.alternatives
    message.body = " "  # not empty: Django leaves an empty body's part out
    message.alternatives = [EmailAlternative(" ", alt.mimetype) for alt in alternatives]
    try:
        mime = build()
    finally:
        message.body, message.alternatives = body, alternatives
    parts = mime.get_payload() if mime.is_multipart() else [mime]
    for part, text in zip(parts, texts, strict=True):
        del part["Content-Transfer-Encoding"]
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(_quoted_printable(text))
    return mime


class ShortHeadersAsIs(Compat32):
    """Python's compat32 email policy, which Django's messages use, except that a header in
    printable ASCII that fits on its line, or that holds no place to fold it at (a link), is
    written as compat32 writes it without going through email.header.Header, which costs a tenth
    of serializing a digest: as it is, or on a continuation line of its own."""

    def _fold(self, name: str, value, sanitize: bool) -> str:
        limit = self.max_line_length or 78
        if isinstance(value, str) and value.isascii() and value.isprintable():
            if len(name) + len(value) + 2 <= limit:
                return f"{name}: {value}{self.linesep}"
            if _UNFOLDABLE.fullmatch(value):
                return f"{name}: {self.linesep} {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


# Header's split characters are ";, \t"; a printable value has no tab.
_UNFOLDABLE = re.compile(r"[^;, ]+")


SHORT_HEADERS_AS_IS = ShortHeadersAsIs()
SHORT_HEADERS_AS_IS_CRLF = SHORT_HEADERS_AS_IS.clone(linesep="\r\n")


def fresh_boundary(message: EmailMessage) -> str:
    """A MIME boundary that none of the message's parts contains. The standard library picks a
    random one and then compiles a regular expression per message to prove it unused, which
    costs a sixth of serializing a digest; a 128-bit random token checked with `in` is enough."""
    parts = [message.body, *(content for content, _ in getattr(message, "alternatives", []))]
    while True:
        boundary = f"=={_random_hex(_BOUNDARIES)}=="
        if not any(boundary in part for part in parts):
            return boundary
