"""A message on the wire waits at its last line (digest/delivery/smtp_gate.py): the server
accepts it only once the sender has marked it sent (committed right after the "." goes:
smtp_sending), so every message the server accepted before is marked sent, one it refuses has its
mark taken back, and a message whose claim was taken over meanwhile reaches no one."""

import email
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import sanitize_address
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from digest.delivery import claims, planning, sending, smtp_gate, smtp_sending
from digest.delivery.sending import Outcome
from digest.delivery.smtp_gate import Gate, Withheld, envelope_address, send_gated
from digest.models import Delivery
from tests.digest.delivery.delivery_records import NOW, make_subscriber


def message(to: str) -> EmailMessage:
    return EmailMessage("Your digest", "Papers.\n.\nA line that was a dot.", "d@example.com", [to])


def test_a_message_let_through_arrives_whole(smtp_server):
    backend = EmailBackend(host="127.0.0.1", port=smtp_server.port)
    gate = Gate()
    with ThreadPoolExecutor(max_workers=1) as sender:
        handover = sender.submit(send_gated, backend, message("ada@example.com"), gate)
        assert gate.reached()
        assert smtp_server.received == []  # all of it but the "." is on the wire
        assert gate.let_through()
        gate.release()
        handover.result()
    backend.close()

    [(to, content)] = smtp_server.received
    parsed = email.message_from_bytes(content)
    assert to == "ada@example.com" and parsed["Subject"] == "Your digest"
    assert parsed.get_payload().splitlines() == ["Papers.", ".", "A line that was a dot."]


def test_a_message_withheld_at_its_last_line_reaches_no_one(smtp_server):
    backend = EmailBackend(host="127.0.0.1", port=smtp_server.port)
    gate = Gate()
    with ThreadPoolExecutor(max_workers=1) as sender:
        handover = sender.submit(send_gated, backend, message("ada@example.com"), gate)
        assert gate.reached()
        gate.release()  # without letting it through
        with pytest.raises(Withheld):
            handover.result()
        backend.close()
        backend.open()  # the connection is closed; the next message goes on a new one
        after = Gate()
        handover = sender.submit(send_gated, backend, message("grace@example.com"), after)
        assert after.reached()
        after.let_through()
        after.release()
        handover.result()
    backend.close()

    assert smtp_server.recipients() == ["grace@example.com"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("connections", [1, 4])
def test_when_the_server_accepts_a_message_every_round_before_is_marked_sent(
    papers, smtp_server, settings, connections
):
    """A round is one message per connection; its marks commit right after its last "."."""
    settings.DIGEST_SMTP_CONNECTIONS = connections
    readers = [make_subscriber(f"reader{n}@example.com").email for n in range(6)]
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    email_of = dict(Delivery.objects.values_list("pk", "subscriber__email"))
    round_of = {email_of[pk]: position // connections for position, pk in enumerate(ids)}
    earlier_not_marked_at_accept: list[list[str]] = []

    def check(to: str) -> None:
        def read() -> None:
            accepted = Delivery.objects.filter(subscriber__email__in=smtp_server.recipients())
            try:
                not_marked = accepted.exclude(status=Delivery.Status.SENT)
                earlier = [
                    email
                    for email in not_marked.values_list("subscriber__email", flat=True)
                    if round_of[email] < round_of[to]
                ]
                earlier_not_marked_at_accept.append(earlier)
            finally:
                connection.close()

        reader = threading.Thread(target=read)  # the ORM refuses to run in the server's loop
        reader.start()
        reader.join()

    smtp_server.on_accept = check
    results = sending.send_deliveries(ids, connection=EmailBackend(port=smtp_server.port))

    assert {result.outcome for result in results.values()} == {Outcome.SENT}
    assert sorted(smtp_server.recipients()) == sorted(readers)
    assert earlier_not_marked_at_accept == [[]] * 6


@pytest.mark.django_db(transaction=True)
def test_a_message_whose_claim_is_taken_over_while_it_travels_reaches_no_one(
    papers, smtp_server, monkeypatch
):
    for n in range(3):
        make_subscriber(f"reader{n}@example.com")
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    second = Delivery.objects.get(pk=ids[1])
    mark_sent_if_ours = claims.Fence.mark_sent_if_ours

    def taken_over_during_the_second(fence, sent, now):
        if second.pk in {row.delivery_id for row in sent}:  # another worker takes it over
            Delivery.objects.filter(pk=second.pk).update(claim_token="the-other-worker")
        return mark_sent_if_ours(fence, sent, now)

    monkeypatch.setattr(claims.Fence, "mark_sent_if_ours", taken_over_during_the_second)
    results = sending.send_deliveries(ids, connection=EmailBackend(port=smtp_server.port))

    assert results[second.pk].outcome == Outcome.NOT_CLAIMED
    assert sorted(smtp_server.recipients()) == ["reader0@example.com", "reader2@example.com"]
    second.refresh_from_db()
    assert (second.status, second.claim_token) == ("sending", "the-other-worker")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("answer", "status", "outcome"),
    [("451 Try again later", "planned", Outcome.RETRY), ("554 Refused", "failed", Outcome.FAILED)],
)
def test_a_message_the_server_refuses_at_its_end_has_its_sent_mark_taken_back(
    papers, smtp_server, answer, status, outcome
):
    for n in range(3):
        make_subscriber(f"reader{n}@example.com")
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    refused = Delivery.objects.select_related("subscriber").get(pk=ids[1])
    refused_address = refused.subscriber.email
    refuse = smtp_server.handle_DATA

    async def refusing_the_second(smtp, session, envelope) -> str:
        if envelope.rcpt_tos == [refused_address]:
            return answer
        return await refuse(smtp, session, envelope)

    smtp_server.handle_DATA = refusing_the_second
    results = sending.send_deliveries(ids, connection=EmailBackend(port=smtp_server.port))

    assert results[refused.pk].outcome == outcome
    assert sorted(smtp_server.recipients()) == ["reader0@example.com", "reader2@example.com"]
    refused.refresh_from_db()
    assert (refused.status, refused.sent_at) == (status, None)
    assert answer.split(" ", 1)[1] in refused.error
    sent = Delivery.objects.filter(pk__in=[ids[0], ids[2]])
    assert {row.status for row in sent} == {"sent"} and all(row.sent_at for row in sent)


@pytest.mark.django_db(transaction=True)
def test_a_message_whose_last_line_cannot_be_written_is_never_committed_as_sent(
    papers, smtp_server, settings, monkeypatch
):
    """Its mark is undone before the round commits: a worker killed right after the COMMIT leaves
    it to be sent again, not marked sent and lost."""
    settings.DIGEST_SMTP_CONNECTIONS = 1
    for n in range(3):
        make_subscriber(f"reader{n}@example.com")
    ids = planning.queue_run(planning.plan_deliveries(NOW))
    backend = EmailBackend(port=smtp_server.port)
    let_through, settle = smtp_gate.Gate.let_through, smtp_sending._settle
    gates: list[Gate] = []
    committed_status: list[str] = []

    def the_connection_drops_before_the_second_end(gate):
        gates.append(gate)
        if len(gates) == 2:
            backend.connection.sock.shutdown(socket.SHUT_RDWR)
        return let_through(gate)

    def settling(handovers, fence, results):  # the round has committed by now
        if len(gates) == 2:
            committed_status.append(Delivery.objects.get(pk=ids[1]).status)
        return settle(handovers, fence, results)

    monkeypatch.setattr(smtp_gate.Gate, "let_through", the_connection_drops_before_the_second_end)
    monkeypatch.setattr(smtp_sending, "_settle", settling)
    results = sending.send_deliveries(ids, connection=backend)

    assert committed_status == ["sending"]
    assert results[ids[1]].outcome == Outcome.RETRY
    assert Delivery.objects.get(pk=ids[1]).status == "planned"
    assert sorted(smtp_server.recipients()) == ["reader0@example.com", "reader2@example.com"]


@given(st.from_regex(smtp_gate._PLAIN_ADDRESS, fullmatch=True))
def test_a_plain_address_goes_on_the_envelope_as_django_would_put_it(address):
    assert envelope_address(address, "utf-8") == sanitize_address(address, "utf-8")


@given(st.one_of(st.text(), st.emails(), st.builds("{}@{}".format, st.text(), st.text())))
def test_any_address_goes_on_the_envelope_as_django_would_put_it_or_is_refused_alike(address):
    try:
        expected = sanitize_address(address, "utf-8")
    except ValueError:
        with pytest.raises(ValueError):
            envelope_address(address, "utf-8")
    else:
        assert envelope_address(address, "utf-8") == expected
