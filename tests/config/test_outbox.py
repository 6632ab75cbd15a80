import errno
from pathlib import Path

import pytest
from django.core.mail import EmailMultiAlternatives

from config.outbox import OutboxFull
from digest.delivery import planning, sending
from digest.delivery.sending import Outcome
from digest.models import Delivery
from tests.conftest import read_outbox
from tests.digest.delivery.delivery_records import NOW, make_paper, make_subscriber


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


class FullDiskFile:
    """A file on a disk that fills up partway through a write."""

    def __init__(self, file) -> None:
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, data: bytes) -> int:
        self.file.write(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def full_disk(monkeypatch):
    real_open = Path.open

    def open_on_a_full_disk(self, mode="r", *args, **kwargs):
        file = real_open(self, mode, *args, **kwargs)
        return FullDiskFile(file) if "w" in mode else file

    monkeypatch.setattr(Path, "open", open_on_a_full_disk)


def test_a_full_disk_leaves_no_temporary_file_and_says_so(outbox, full_disk):
    message = EmailMultiAlternatives(subject="Digest", body="text", to=["reader@example.com"])

    with pytest.raises(OutboxFull, match="could not store a message: the disk is full"):
        message.send()

    assert list(outbox.iterdir()) == []


@pytest.mark.django_db
def test_a_digest_that_meets_a_full_outbox_waits_for_a_retry(outbox, full_disk):
    make_paper("Sparse Mixture of Experts at Scale", "A mixture of experts routes tokens.")
    make_subscriber("ada@example.com")
    [delivery] = planning.queue_run(planning.plan_deliveries(NOW))

    [result] = sending.send_deliveries([delivery]).values()

    assert result.outcome == Outcome.RETRY and "the disk is full" in result.error
    assert Delivery.objects.get().status == Delivery.Status.PLANNED
    assert list(outbox.iterdir()) == []
