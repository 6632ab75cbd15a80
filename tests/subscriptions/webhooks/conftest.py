"""Every webhook test: the webhook secret configured, and a client that posts as an ESP."""

import base64

import pytest
from django.test import Client

from tests.subscriptions.webhooks.payloads import MAILGUN_KEY, SECRET


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}


@pytest.fixture
def esp() -> Client:
    auth = base64.b64encode(SECRET.encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {auth}")
