"""Digests as messages on the wire: a chunk over a few SMTP connections, whole MIME parts,
headers as is."""

import email
from email.policy import compat32

import pytest
from django.core.mail import EmailMessage
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from digest.delivery import messages, sending
from digest.delivery.sending import Outcome
from digest.models import Delivery

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("connections", [1, 2])
def test_a_chunk_goes_over_its_smtp_connections_each_message_whole_and_marked_sent(
    planned, smtp_server, settings, connections
):
    from django.core.mail.backends.smtp import EmailBackend

    settings.DIGEST_SMTP_CONNECTIONS = connections
    backend = EmailBackend(host="127.0.0.1", port=smtp_server.port)

    results = sending.send_deliveries(planned, connection=backend)

    assert {result.outcome for result in results.values()} == {Outcome.SENT}
    assert len(planned) == 3 and len(smtp_server.peers) == connections
    parsed = [email.message_from_bytes(content) for _, content in smtp_server.received]
    message_ids = dict(Delivery.objects.values_list("subscriber__email", "message_id"))
    assert {message["To"]: message["Message-ID"] for message in parsed} == message_ids
    assert [to for to, _ in smtp_server.received] == [message["To"] for message in parsed]
    html = next(part for part in parsed[0].walk() if part.get_content_type() == "text/html")
    assert "Sparse Mixture of Experts at Scale" in html.get_payload(decode=True).decode()


def test_smtp_messages_are_multipart_alternative_with_a_boundary_of_their_own(planned, smtp_server):
    from django.core.mail.backends.smtp import EmailBackend

    sending.send_deliveries(
        planned, connection=EmailBackend(host="127.0.0.1", port=smtp_server.port)
    )

    parsed = [email.message_from_bytes(content) for _, content in smtp_server.received]
    assert [message.get_content_type() for message in parsed] == ["multipart/alternative"] * 3
    assert len({message.get_boundary() for message in parsed}) == 3
    for message in parsed:
        parts = [part.get_content_type() for part in message.walk()][1:]
        assert parts == ["text/plain", "text/html"]


def test_a_boundary_that_occurs_in_the_message_is_not_used(monkeypatch):
    message = EmailMessage(body="a line with ==taken== in it")
    tokens = iter(["taken", "free"])
    monkeypatch.setattr(messages, "_random_hex", lambda generator: next(tokens))

    assert messages.fresh_boundary(message) == "==free=="


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["Subject", "List-Unsubscribe", "X"]),
    st.one_of(
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
        st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=120),
    ),
)
def test_short_ascii_headers_are_written_exactly_as_compat32_would(name, value):
    policy = messages.SHORT_HEADERS_AS_IS.clone(linesep="\r\n")

    assert policy.fold_binary(name, value) == compat32.clone(linesep="\r\n").fold_binary(
        name, value
    )


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["List-Unsubscribe", "X", "A-Header-Name-Longer-Than-Most-" * 3]),
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=";,"),
        min_size=1,
        max_size=400,
    ),
)
def test_a_header_with_nowhere_to_fold_is_written_exactly_as_compat32_would(name, value):
    policy = messages.SHORT_HEADERS_AS_IS.clone(linesep="\r\n")

    assert policy.fold_binary(name, value) == compat32.clone(linesep="\r\n").fold_binary(
        name, value
    )


def test_forked_workers_draw_their_own_boundaries_and_markers():
    import os

    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a prefork worker
        drawn = [messages._random_hex(g) for g in (messages._BOUNDARIES, messages._MARKERS)]
        os.write(write, " ".join(drawn).encode())
        os._exit(0)
    os.waitpid(child, 0)
    in_child = os.read(read, 200).decode().split()
    in_parent = [messages._random_hex(g) for g in (messages._BOUNDARIES, messages._MARKERS)]

    assert len(in_child) == 2 and set(in_child).isdisjoint(in_parent)
