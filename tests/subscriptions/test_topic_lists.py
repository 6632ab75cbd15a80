"""Topics are one list everywhere: commas, semicolons and new lines separate them in the form,
the preview, the preference page, the admin, the import and the ranking (split_topics)."""

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from digest.matching import select_papers
from digest.matching.text import parse_topic_lines
from digest.models import Paper
from subscriptions import links
from subscriptions.admin import SubscriberForm
from subscriptions.forms import clean_topic_lines
from subscriptions.models import Subscriber
from subscriptions.topics import split_topics
from tests.unicode_text import any_text

TYPED = "reinforcement learning, -robotics; graph neural networks\nbandits"
SEPARATORS = st.sampled_from(["\n", ",", ";", ", ", "; ", "\r\n", "，"])


@given(any_text)
def test_split_topics_joined_and_split_again_is_the_same_list(text):
    topics = split_topics(text)

    assert split_topics("\n".join(topics)) == topics
    assert all(topic and topic == " ".join(topic.split()) for topic in topics)


@given(st.lists(any_text, max_size=8), SEPARATORS)
def test_a_topic_list_joined_with_any_separator_splits_back_to_itself(texts, separator):
    topics = [topic for text in texts for topic in split_topics(text)]

    assert split_topics(separator.join(topics)) == topics


def test_commas_semicolons_and_new_lines_all_separate_topics():
    assert split_topics(TYPED) == [
        "reinforcement learning",
        "-robotics",
        "graph neural networks",
        "bandits",
    ]
    assert clean_topic_lines(TYPED).splitlines() == split_topics(TYPED)


def test_a_comma_line_saved_before_this_change_ranks_as_its_topics_and_exclusion():
    legacy = Subscriber(email="old@example.org", topics="reinforcement learning, -robotics")

    assert parse_topic_lines(legacy.topic_lines) == (["reinforcement learning"], ["robotics"])
    assert (legacy.wanted_topics, legacy.excluded_words) == (
        ["reinforcement learning"],
        ["robotics"],
    )


def test_the_admin_form_saves_comma_separated_topics_one_per_line(db):
    form = SubscriberForm(
        {"topics": "diffusion models, -survey", "frequency": "daily", "weekday": "0",
         "send_hour": "7", "time_zone": "UTC", "papers_per_digest": "10"},
        instance=Subscriber(email="a@example.org"),
    )  # fmt: skip

    assert form.is_valid(), form.errors
    assert form.cleaned_data["topics"] == "diffusion models\n-survey"


def paper(title: str) -> Paper:
    now = timezone.now() - timedelta(hours=1)
    return Paper.objects.create(
        title=title,
        title_key=title.lower(),
        abstract="We study the method at scale and report what we find on benchmarks.",
        first_seen=now,
        last_seen=now,
    )


def previewed_titles(page: str) -> list[str]:
    found = re.findall(r"<li>\s*<h3>(?:<a [^>]*>)?(.*?)(?:</a>)?</h3>", page, re.S)
    return [html.unescape(title) for title in found]


@pytest.mark.django_db
def test_the_preview_ranks_exactly_what_the_preference_page_saves(client):
    papers = {
        p.pk: p.title
        for p in [
            paper("Reinforcement Learning for Robotics Manipulation"),
            paper("Reinforcement Learning in Board Games"),
            paper("Graph Neural Networks for Molecules"),
        ]
    }
    typed = "reinforcement learning, -robotics, graph neural networks"
    reader = Subscriber.objects.create(
        email="ada@example.org", status="active", topics="x", confirmed_at=timezone.now()
    )
    url = reverse(
        "subscriptions:preferences", kwargs={"token": links.make_token(reader, "preferences")}
    )

    saved = client.post(
        url,
        {"action": "save", "topics": typed, "frequency": "daily", "weekday": "0",
         "send_hour": "7", "time_zone": "UTC", "papers_per_digest": "10"},
    )  # fmt: skip
    preview = client.get("/preview/", {"topics": typed}).content.decode()

    reader.refresh_from_db()
    assert reader.topic_lines == ["reinforcement learning", "-robotics", "graph neural networks"]
    digest = [papers[m.paper_id] for m in select_papers([reader], now=timezone.now())[reader.pk]]
    assert sorted(previewed_titles(preview)) == sorted(digest)
    assert "Reinforcement Learning for Robotics Manipulation" not in digest
    assert set(digest) == {
        "Reinforcement Learning in Board Games",
        "Graph Neural Networks for Molecules",
    }
    page = saved.content.decode()
    saved_topics = re.search(r'<ul class="points saved-topics">(.*?)</ul>', page).group(1)
    assert re.findall(r"<li>(.*?)</li>", saved_topics) == [
        "reinforcement learning",
        "graph neural networks",
    ]
    assert '<ul class="points saved-exclusions"><li>−robotics</li></ul>' in page
