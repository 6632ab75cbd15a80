from django.db import models
from django.db.models.functions import Lower

from subscriptions import addresses
from subscriptions.topics import split_topics


class SubscriberQuerySet(models.QuerySet):
    def with_email(self, address: str) -> "SubscriberQuerySet":
        """The subscriber of any spelling of `address` (subscriptions.addresses), through the
        unique index on lower(email)."""
        return self.alias(email_lower=Lower("email")).filter(
            email_lower=addresses.lookup_key(address)
        )


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    class Frequency(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    MAX_TOPICS = 20

    email = models.EmailField(
        max_length=254, help_text="Canonical: NFKC, the domain lower-cased and in IDNA form."
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    topics = models.TextField(
        blank=True, help_text="One keyword or phrase per line; '-word' excludes."
    )
    frequency = models.CharField(max_length=8, choices=Frequency.choices, default=Frequency.DAILY)
    weekday = models.PositiveSmallIntegerField(
        choices=Weekday.choices, default=Weekday.MONDAY, help_text="For weekly digests."
    )
    send_hour = models.PositiveSmallIntegerField(default=7, help_text="Local hour, 0-23.")
    time_zone = models.CharField(max_length=64, default="UTC")
    papers_per_digest = models.PositiveSmallIntegerField(default=10)
    liked_at_sign_up = models.JSONField(
        default=list,
        blank=True,
        help_text="Ids of the papers ticked in the sign-up's preview (the digest app reads them).",
    )

    consent_at = models.DateTimeField(null=True, blank=True)
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_text = models.TextField(blank=True)
    confirmation_sent_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    digests_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the reader confirmed on the site: their first digest is the one at their "
        "next send time after this, as the confirmation page said (empty: no such wait).",
    )
    paused_until = models.DateTimeField(
        null=True, blank=True, help_text="A pause with an end: digests start again after it."
    )
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribe_reason = models.CharField(max_length=200, blank=True)
    soft_bounces = models.PositiveIntegerField(default=0)
    address_problem = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why this address could not be made canonical (set by a migration; the row "
        "was left as it was, for an editor to resolve).",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(send_hour__gte=0, send_hour__lte=23),
                name="subscriber_send_hour_range",
            ),
        ]
        indexes = [models.Index(fields=["status", "frequency", "send_hour"])]

    def __str__(self) -> str:
        return self.email

    @property
    def display_email(self) -> str:
        """The address as its owner writes it (an IDN domain in Unicode), for pages and emails."""
        return addresses.display_email(self.email)

    @property
    def topic_lines(self) -> list[str]:
        """The topics one by one, split the one way every path splits them (commas too, for
        rows saved before they separated topics)."""
        return split_topics(self.topics)

    @property
    def wanted_topics(self) -> list[str]:
        return [line for line in self.topic_lines if not line.startswith("-")]

    @property
    def excluded_words(self) -> list[str]:
        """What the '-word' lines leave out, without their dash."""
        return [
            line[1:].strip() for line in self.topic_lines if line[1:].strip() and line[0] == "-"
        ]

    @property
    def schedule_text(self) -> str:
        """When digests go out, in the reader's own zone: "every Friday at 08:00 (Asia/Tokyo)"."""
        hour = f"{self.send_hour:02d}:00 ({self.time_zone.replace('_', ' ')})"
        if self.frequency == self.Frequency.WEEKLY:
            return f"every {self.get_weekday_display()} at {hour}"
        return f"every day at {hour}"


class SuppressionEvent(models.Model):
    """Why and when an address stopped receiving mail. Survives erasure without personal data."""

    class Kind(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SOFT_BOUNCE = "soft_bounce", "Soft bounce"
        COMPLAINT = "complaint", "Complaint"
        UNSUBSCRIBE = "unsubscribe", "Unsubscribe"
        EDITOR = "editor", "Suppressed by an editor"
        ERASURE = "erasure", "Data erased on request"

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "ESP webhook"
        LINK = "link", "Link in an email"
        ONE_CLICK = "one_click", "One-click unsubscribe"
        EDITOR = "editor", "Editor"
        SENDING = "sending", "Refused when sent"

    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="suppressions"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    esp = models.CharField(max_length=32, blank=True)
    message_id = models.CharField(
        max_length=255, blank=True, help_text="The ESP's message, so a retried event counts once."
    )
    detail = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.occurred_at:%Y-%m-%d})"


class SignUpRequest(models.Model):
    """An anonymous sign-up for an address already here (pending or unsubscribed): what it asked
    for waits here, and changes the reader only when the confirmation link it sent is followed,
    so nobody but the mailbox's owner can change a reader's topics, schedule or consent."""

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="sign_up_requests"
    )
    preferences = models.JSONField(help_text="The preference fields the sign-up form asked for.")
    liked_at_sign_up = models.JSONField(
        default=list, blank=True, help_text="Ids of the papers ticked in the sign-up's preview."
    )
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_text = models.TextField(blank=True)
    requested_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Sign-up request of {self.requested_at:%Y-%m-%d %H:%M}"


class OwedEmail(models.Model):
    """A consent email that could not be queued (the broker was down): `send_owed_emails` queues
    it again once the broker is back, so a sign-up made during an outage is still confirmed."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    template = models.CharField(max_length=32)
    sign_up_request = models.ForeignKey(
        SignUpRequest, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.template} email owed since {self.created_at:%Y-%m-%d %H:%M}"


class ThrottleWindow(models.Model):
    """Rate-limit counters kept in the database while the shared cache (Redis) is down."""

    key = models.CharField(max_length=100, unique=True)
    hits = models.PositiveIntegerField(default=0)
    ends_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.hits} until {self.ends_at:%H:%M:%S}"
