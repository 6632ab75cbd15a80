"""Fixtures of the desk's tests."""

import pytest

from config.celery import app as celery_app


@pytest.fixture
def tasks_in_process(monkeypatch):
    """Run Celery tasks inside the request, as without a broker, to see what they did."""
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)
