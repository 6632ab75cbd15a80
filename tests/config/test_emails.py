"""Headers every email carries, read back from the outbox with the email package."""

import os
import subprocess
import sys
from email import message_from_string, policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.celery import app as celery_app
from config.emails import MAX_SUBJECT_CHARS, fit_subject
from tests.conftest import PROJECT_DIR, read_outbox
from tests.subscriptions.conftest import sign_up_data

SEND_ONE = """
import django
django.setup()
from config.celery import app as celery_app
from config.emails import build_email
message = build_email("confirm-existing", "ada@example.org",
                      {"subscriber": {"email": "ada@example.org"}, "preferences_url": "x"})
print(message.message().as_string())
"""


@pytest.mark.django_db
def test_confirmation_email_has_a_real_utc_offset_and_the_site_domain(
    client, settings, outbox, monkeypatch
):
    monkeypatch.setitem(celery_app.conf, "task_always_eager", True)  # send it in-process
    settings.SITE_URL = "https://papers.example.com"
    client.post("/subscribe/", sign_up_data())

    [email] = read_outbox(outbox)
    assert email["Date"].endswith("+0000")  # not "-0000", which means "zone unknown"
    assert email["Date"].datetime.utcoffset().total_seconds() == 0
    assert email["Message-ID"].endswith("@papers.example.com>")


def test_from_uses_the_site_host_when_only_site_url_is_set(tmp_path):
    clean = {name: value for name, value in os.environ.items() if name in {"PATH", "HOME"}}
    result = subprocess.run(
        [sys.executable, "-c", SEND_ONE],
        cwd=PROJECT_DIR,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PAPERBOY_VAR_DIR": str(tmp_path),
            "SITE_URL": "https://papers.example.com/",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    email = message_from_string(result.stdout, policy=policy.default)

    assert email["From"] == "Paperboy <digest@papers.example.com>"
    assert email["Message-ID"].endswith("@papers.example.com>")
    assert "localhost" not in email["From"] + email["Message-ID"]


def test_a_long_subject_is_cut_at_a_word_to_100_characters_with_the_ellipsis():
    subject = "12 new papers for you: " + "Scaling Sparse Mixture-of-Experts " * 5

    cut = fit_subject(subject)

    assert len(cut) == len(cut.rstrip()) <= MAX_SUBJECT_CHARS
    assert cut.endswith("Mixture-of-Experts…")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_subject_fits_on_one_line_within_the_limit(subject):
    fitted = fit_subject(subject)

    assert len(fitted) <= MAX_SUBJECT_CHARS
    assert "\n" not in fitted and "\r" not in fitted
    one_line = " ".join(subject.split())
    if len(one_line) <= MAX_SUBJECT_CHARS:
        assert fitted == one_line
    else:
        assert fitted.endswith("…")
        assert one_line.startswith(fitted[:-1].rstrip(" ,;:-"))


@settings(max_examples=200, deadline=None)
@given(subject=st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=200))
def test_any_subject_parses_back_as_written(tmp_path_factory, subject):
    """Every email (not only digests) keeps a long non-ASCII subject whole: no leading space."""
    from django.test import override_settings

    from config.emails import build_email

    folder = tmp_path_factory.mktemp("templates")
    (folder / "emails").mkdir()
    for part in ("subject.txt", "body.txt", "body.html"):
        text = "{% autoescape off %}{{ text }}{% endautoescape %}"
        (folder / "emails" / f"any-{part}").write_text(text, encoding="utf-8")
    templates = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [folder]}]
    with override_settings(TEMPLATES=templates):
        message = build_email("any", "ada@example.org", {"text": subject})
    parsed = message_from_string(message.message().as_string(), policy=policy.default)

    assert parsed["Subject"] == fit_subject(subject)
