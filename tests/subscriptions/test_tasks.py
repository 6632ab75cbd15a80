"""subscriptions.tasks: the confirmation email through the real broker and a real worker."""

import time

import pytest

from config.celery import app as celery_app
from subscriptions.models import Subscriber
from tests.conftest import read_outbox
from tests.subscriptions.conftest import links_in, sign_up_data


@pytest.mark.services
def test_sign_up_queues_the_confirmation_and_a_worker_sends_it(
    client, celery_worker_process, outbox, monkeypatch
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
    celery_worker_process.start()

    response = client.post("/subscribe/", sign_up_data())

    assert response.status_code == 302
    deadline = time.monotonic() + 60
    while not read_outbox(outbox) and time.monotonic() < deadline:
        time.sleep(0.2)
    [email] = read_outbox(outbox)
    assert email["To"] == "ada@example.org"
    assert [purpose for purpose, _ in links_in(outbox)] == ["confirm", "preferences"]
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING
