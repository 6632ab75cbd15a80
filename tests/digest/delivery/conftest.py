"""Fixtures of the delivery tests: three papers and three readers planned for them (the local
SMTP server is the suite's `smtp_server`)."""

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
