from django.core.mail import EmailMultiAlternatives

from tests.conftest import read_outbox


def test_each_message_becomes_one_eml_file(outbox):
    for number in (1, 2):
        message = EmailMultiAlternatives(
            subject=f"Digest {number}", body="text", to=[f"reader{number}@example.com"]
        )
        message.attach_alternative("<p>html</p>", "text/html")
        message.send()

    emails = read_outbox(outbox)
    assert sorted(email["To"] for email in emails) == ["reader1@example.com", "reader2@example.com"]
    assert all(email.is_multipart() for email in emails)
    assert len(list(outbox.glob(".*.tmp"))) == 0
