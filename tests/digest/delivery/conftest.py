"""Fixtures of the delivery tests: three papers, three readers planned for them, and a local
SMTP server."""

import socket

import pytest

from digest.delivery import planning
from digest.models import Paper
from tests.digest.delivery.delivery_records import NOW, make_paper, make_subscriber


@pytest.fixture
def papers() -> list[Paper]:
    return [
        make_paper(
            "Sparse Mixture of Experts at Scale",
            "We train a mixture of experts model. It routes tokens to experts.",
        ),
        make_paper("Quantization of Large Models", "We quantize weights to four bits."),
        make_paper("Protein Folding with Diffusion", "We fold proteins."),
    ]


@pytest.fixture
def planned(papers) -> list[int]:
    for name in ("ada", "grace", "alan"):
        make_subscriber(f"{name}@example.com")
    return planning.queue_run(planning.plan_deliveries(NOW))


class SMTPServer:
    """A local SMTP server (aiosmtpd, in a thread) that keeps what it accepts and who sent it;
    `on_accept(to)` runs when a message has come whole, before the server answers that it
    accepts it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.peers: set = set()
        self.on_accept = None
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.on_accept:
            self.on_accept(envelope.rcpt_tos[0])
        self.received.append((envelope.rcpt_tos[0], envelope.content))
        self.peers.add(session.peer)
        return "250 OK"

    def recipients(self) -> list[str]:
        return [to for to, _ in self.received]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = SMTPServer()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.port = port
    yield handler
    controller.stop()
