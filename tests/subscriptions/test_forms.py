"""subscriptions.forms: topic lines and the choices forms share."""

import pytest
from django import forms

from subscriptions.forms import PreferencesForm, SignUpForm, clean_topic_lines
from subscriptions.models import Subscriber


def test_topic_lines_are_trimmed_deduplicated_and_blank_lines_dropped():
    cleaned = clean_topic_lines("  Mixture   of experts \n\nmixture of experts\n -survey \n")

    assert cleaned == "Mixture of experts\n-survey"


@pytest.mark.parametrize("text", ["", "-only\n-exclusions", "\n".join(str(n) for n in range(21))])
def test_topic_lines_that_cannot_make_a_digest_are_refused(text):
    with pytest.raises(forms.ValidationError):
        clean_topic_lines(text)


def test_an_unusual_papers_per_digest_shows_for_its_subscriber_only():
    subscriber = Subscriber(email="a@example.org", topics="x", papers_per_digest=7)

    own = PreferencesForm.for_subscriber(subscriber)
    other = PreferencesForm.for_subscriber(Subscriber(email="b@example.org", topics="x"))

    assert 7 in dict(own.fields["papers_per_digest"].choices)
    assert 7 not in dict(other.fields["papers_per_digest"].choices)
    assert 'value="7" selected' in str(own["papers_per_digest"])


def test_time_zone_select_marks_the_stored_zone():
    form = PreferencesForm.for_subscriber(
        Subscriber(email="a@example.org", topics="x", time_zone="America/Chicago")
    )

    html = str(form["time_zone"])

    assert '<option value="America/Chicago" selected>' in html
    assert html.count(" selected") == 1


def test_sign_up_form_accepts_a_valid_sign_up_and_normalizes_the_address():
    form = SignUpForm(
        {"email": " Ada@EXAMPLE.org ", "topics": "llm", "frequency": "weekly", "weekday": "2",
         "send_hour": "21", "time_zone": "Asia/Kolkata"}
    )  # fmt: skip

    assert form.is_valid(), form.errors
    assert form.cleaned_data["email"] == "Ada@example.org"
    assert form.preferences() == {"topics": "llm", "frequency": "weekly", "weekday": 2,
                                  "send_hour": 21, "time_zone": "Asia/Kolkata"}  # fmt: skip
