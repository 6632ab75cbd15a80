"""The digest's MIME bytes, with its text parts encoded by binascii, read back exactly as the
message Django builds on its own."""

import email
from email import policy

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from config.emails import Email, standard_headers
from digest.delivery import messages
from tests.unicode_text import any_text

# What can be put in a message at all: text the standard library itself can encode.
encodable = any_text.filter(lambda text: _encodes(text))


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def message(subject: str, text: str, html: str) -> Email:
    built = Email(
        subject=subject,
        body=text,
        from_email="digest@example.com",
        to=["reader@example.org"],
        headers=standard_headers({"Message-ID": "<1@example.com>", "Date": "fixed"}),
    )
    built.attach_alternative(html, "text/html")
    return built


def read_back(raw: bytes):
    parsed = email.message_from_bytes(raw, policy=policy.default)
    headers = [(name, value) for name, value in parsed.items() if name != "Content-Type"]
    parts = [
        (part.get_content_type(), part.get_payload(decode=True))
        for part in parsed.walk()
        if not part.is_multipart()
    ]
    return headers, parsed.get_content_type(), parts


# A lone surrogate is no text (no email can carry it: Django's own message() raises).
subject_line = st.text(
    st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=80
)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    subject=subject_line,
    text=encodable,
    html=encodable,
)
def test_serialized_message_reads_back_as_djangos_own(subject, text, html):
    ours = message(subject, text, html)
    messages.serialize_now(ours)
    django_bytes = message(subject, text, html).message().as_bytes(linesep="\r\n")

    assert read_back(ours.message().as_bytes(linesep="\r\n")) == read_back(django_bytes)


def test_long_lines_are_folded_for_the_wire():
    ours = message("Hi", "word " * 400, "<p>" + "é" * 3000 + "</p>")
    messages.serialize_now(ours)
    raw = ours.message().as_bytes(linesep="\r\n")

    assert max(len(line) for line in raw.split(b"\r\n")) <= 78
    assert b"Content-Transfer-Encoding: quoted-printable" in raw


@hypothesis_settings(max_examples=100, deadline=None)
@given(
    subject=subject_line,
    text=encodable,
    html=encodable,
)
def test_the_wire_bytes_are_what_the_generator_writes(subject, text, html):
    ours = message(subject, text, html)
    messages.serialize_now(ours)
    mime = ours.message()

    assert mime.as_bytes(linesep="\r\n") == type(mime).as_bytes(mime, linesep="\r\n")


def test_a_digests_bytes_are_written_without_building_its_mime(monkeypatch):
    ours = message("Papers for you", "Text.", "<p>HTML.</p>")

    def no_mime(self):
        raise AssertionError("the MIME objects were built")

    monkeypatch.setattr(Email, "message", no_mime)
    messages.serialize_now(ours)
    monkeypatch.undo()

    assert read_back(messages.wire_bytes(ours)) == read_back(
        message("Papers for you", "Text.", "<p>HTML.</p>").message().as_bytes(linesep="\r\n")
    )
