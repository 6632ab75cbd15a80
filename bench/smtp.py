"""Sending speed of one worker: 2,000 planned digests sent by send_deliveries, the code a Celery
worker runs (claim each chunk of DIGEST_SEND_CHUNK, compose, send in rounds over
DIGEST_SMTP_CONNECTIONS SMTP connections, each round marked sent in one transaction committed
right after its messages' last lines), to a local aiosmtpd server running in another process.
Only planning is left out of the clock.

    .venv/bin/python bench/smtp.py                      # a temporary SQLite file
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/smtp.py
        # a fresh database `bench_smtp` (or $BENCH_DATABASE) on that server, created and dropped

Prints emails/s (wall clock) and how many the server received. Target: >= 200 emails/s.
For scale it then prints what the same server takes from a bare smtplib loop resending one
digest's bytes: the ceiling a sender in Python reaches against this (Python) server, and the
send path's ratio to it (target: >= 0.6).
"""

import multiprocessing
import os
import socket
import sys
import time
from datetime import timedelta
from pathlib import Path

from scratch_database import scratch_database

PROJECT_DIR = Path(__file__).resolve().parent.parent
READERS = int(os.environ.get("BENCH_READERS", "2000"))
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "bench_smtp")


def serve_smtp(port: int, received, ready) -> None:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server, session, envelope) -> str:
            with received.get_lock():
                received.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sink(serve, *args) -> tuple[multiprocessing.Process, int]:
    """A local SMTP server in a process of its own, `serve(port, *args, ready)`, and the EMAIL_*
    variables of this process (and of the workers it starts) pointed at it: (process, port)."""
    port, ready = free_port(), multiprocessing.Event()
    sink = multiprocessing.Process(target=serve, args=(port, *args, ready), daemon=True)
    sink.start()
    ready.wait(10)
    os.environ.update(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
    )
    return sink, port


def main() -> None:
    received = multiprocessing.Value("i", 0)
    server, port = start_sink(serve_smtp, received)
    try:
        with scratch_database(BENCH_DATABASE):
            run_bench(received, port)
    finally:
        server.terminate()


def run_bench(received, port: int) -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # As a production worker runs: DEBUG on would log every query and render templates in
    # debug mode, which costs about a quarter of the time per email.
    os.environ.setdefault("DEBUG", "0")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from digest.delivery import planning, sending
    from digest.models import Delivery, Paper
    from subscriptions.models import Subscriber

    call_command("migrate", verbosity=0)
    now = timezone.now()
    topics = ["mixture of experts", "quantization", "reasoning", "diffusion"]
    Paper.objects.bulk_create(
        Paper(
            title=f"Study {n} of {topics[n % 4]} at scale",
            title_key=f"study {n}",
            abstract=f"We study {topics[n % 4]} in depth. It works well. " * 4,
            authors=["Ada Lovelace", "Alan Turing"],
            first_seen=now - timedelta(hours=1),
            last_seen=now,
        )
        for n in range(200)
    )
    Subscriber.objects.bulk_create(
        Subscriber(
            email=f"reader{n}@example.com",
            topics=topics[n % 4],
            status=Subscriber.Status.ACTIVE,
            send_hour=0,
        )
        for n in range(READERS)
    )
    ids = planning.queue_run(planning.plan_deliveries(now))
    ceiling_before = server_ceiling(port, ids[0])

    started, cpu_started = time.perf_counter(), time.process_time()
    for chunk in planning.chunked(ids, settings.DIGEST_SEND_CHUNK):
        sending.send_deliveries(chunk)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started

    sent = Delivery.objects.filter(status=Delivery.Status.SENT).count()
    assert sent == len(ids) == READERS == received.value - READERS, (sent, received.value)
    print(
        f"{sent:,} digests over SMTP ({connection.vendor}, {settings.DIGEST_SEND_CHUNK} per "
        f"task over {settings.DIGEST_SMTP_CONNECTIONS} connections): {seconds:.2f} s, "
        f"{sent / seconds:,.0f} emails/s; "
        f"the server received {received.value - READERS:,}; sender CPU {cpu_seconds:.2f} s"
    )
    ceiling_after = server_ceiling(port, ids[0])
    ceiling = (ceiling_before + ceiling_after) / 2
    print(
        f"for scale: a bare smtplib loop resending one digest's bytes to the same server: "
        f"{ceiling_before:,.0f} emails/s before, {ceiling_after:,.0f} after; the send path "
        f"reaches {sent / seconds / ceiling:.2f} of their mean"
    )
    print(f"ratio: {sent / seconds / ceiling:.2f} of the bare smtplib loop")
    connection.close()


def server_ceiling(port: int, delivery_id: int) -> float:
    import smtplib

    from digest.delivery import messages
    from digest.models import Delivery

    message = messages.delivery_message(Delivery.objects.get(pk=delivery_id))
    messages.serialize_now(message)
    data = message.message().as_bytes(linesep="\r\n")
    client = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for n in range(READERS):
        client.sendmail("digest@localhost", [f"reader{n}@example.com"], data)
    seconds = time.perf_counter() - started
    client.quit()
    return READERS / seconds


if __name__ == "__main__":
    main()
