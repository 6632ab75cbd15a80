"""Subscribers in the admin: who they are, what they want, and their consent history.

The digest preview is added by digest/admin.py, which registers a subclass of SubscriberAdmin:
this app knows nothing of papers.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import HttpResponse
from django.utils import timezone

import config.lookups  # noqa: F401 - registers ascii_icontains for search_fields
from subscriptions import consent, tasks
from subscriptions.exporting import write_subscribers_csv
from subscriptions.forms import clean_topic_lines, time_zone_names
from subscriptions.models import Subscriber, SuppressionEvent

SUPPRESSED = [
    Subscriber.Status.UNSUBSCRIBED,
    Subscriber.Status.BOUNCED,
    Subscriber.Status.COMPLAINED,
]


class SendHourFilter(admin.SimpleListFilter):
    """The 24 hours, without a DISTINCT over every subscriber to find them."""

    title = "send hour"
    parameter_name = "send_hour"

    def lookups(self, request, model_admin):
        return [(str(hour), f"{hour:02d}:00") for hour in range(24)]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        if self.value() not in {str(hour) for hour in range(24)}:
            # The admin shows the unfiltered list with its "incorrect parameters" notice.
            raise IncorrectLookupParameters(f"send_hour {self.value()!r} is not an hour")
        return queryset.filter(send_hour=int(self.value()))


class AddressProblemFilter(admin.SimpleListFilter):
    """Addresses the canonical-address migration left for an editor (collisions, invalid)."""

    title = "address problem"
    parameter_name = "address_problem"

    def lookups(self, request, model_admin):
        return [("yes", "Needs an editor")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(address_problem="")
        return queryset


class SuppressionEventInline(admin.TabularInline):
    model = SuppressionEvent
    extra = 0
    can_delete = False
    fields = ["occurred_at", "kind", "source", "esp", "detail"]
    readonly_fields = fields
    verbose_name_plural = "Suppression history"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class SubscriberForm(forms.ModelForm):
    class Meta:
        model = Subscriber
        fields = ["topics", "frequency", "weekday", "send_hour", "time_zone", "papers_per_digest"]
        help_texts = {
            "topics": "Separated by commas, semicolons or new lines (saved one per line); "
            "“-word” excludes papers that mention it."
        }

    def clean_topics(self) -> str:
        return clean_topic_lines(self.cleaned_data["topics"])

    def clean_time_zone(self) -> str:
        if self.cleaned_data["time_zone"] not in time_zone_names():
            raise forms.ValidationError("Not a time zone this service knows.")
        return self.cleaned_data["time_zone"]


# What the person agreed to and what happened since: shown, never edited.
CONSENT_FIELDS = [
    "consent_at",
    "consent_ip",
    "consent_text",
    "confirmation_sent_at",
    "confirmed_at",
    "unsubscribed_at",
    "unsubscribe_reason",
    "soft_bounces",
    "created_at",
    "updated_at",
]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    form = SubscriberForm
    list_display = [
        "email",
        "status",
        "topic_list",
        "frequency",
        "send_hour",
        "time_zone",
        "created_at",
    ]
    list_filter = ["status", "frequency", SendHourFilter, AddressProblemFilter]
    search_fields = ["email__ascii_icontains"]
    ordering = ["-pk"]
    show_full_result_count = False
    inlines = [SuppressionEventInline]
    fieldsets = [
        (None, {"fields": ["email", "display_email", "address_problem", "status"]}),
        (
            "What they get",
            {"fields": consent.PREFERENCE_FIELDS},
        ),
        ("Consent", {"fields": CONSENT_FIELDS}),
    ]
    # Status changes only through the actions below, so the consent rules always apply; the
    # address is the one the person consented with.
    readonly_fields = ["email", "display_email", "address_problem", "status", *CONSENT_FIELDS]
    actions = ["resend_confirmation", "suppress", "reactivate", "export_csv"]

    def get_search_results(self, request, queryset, search_term):
        """An address typed in any spelling (Unicode domain, fullwidth letters) also finds the
        canonical one stored."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if "@" in search_term:
            results |= queryset.with_email(search_term)
        return results, may_have_duplicates

    @admin.display(description="topics")
    def topic_list(self, subscriber: Subscriber) -> str:
        return " · ".join(subscriber.topic_lines)

    def has_add_permission(self, request) -> bool:
        # People sign up (double opt-in) or are imported with `import_subscribers`.
        return False

    @admin.action(description="Export selected subscribers as CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="subscribers-{stamp}.csv"'
        write_subscribers_csv(queryset.order_by("pk").iterator(chunk_size=2000), response)
        return response

    def message_count(self, request, count: int, what: str, level=messages.SUCCESS) -> None:
        self.message_user(request, f"{count} subscriber{'s' if count != 1 else ''} {what}.", level)

    @admin.action(description="Resend the confirmation email", permissions=["change"])
    def resend_confirmation(self, request, queryset):
        pending = queryset.filter(status=Subscriber.Status.PENDING)
        sent = sum(consent.send_confirmation(subscriber) for subscriber in pending)
        tasks.queue_consent_emails()
        self.message_count(request, sent, "sent a new confirmation email")
        if throttled := pending.count() - sent:
            self.message_count(
                request, throttled, "skipped: one went out within the hour", messages.WARNING
            )
        if not_pending := queryset.exclude(status=Subscriber.Status.PENDING).count():
            self.message_count(
                request, not_pending, "skipped: not waiting for confirmation", messages.WARNING
            )

    @admin.action(description="Suppress (stop all mail)", permissions=["change"])
    def suppress(self, request, queryset):
        stopped = sum(
            consent.suppress(
                subscriber,
                kind=SuppressionEvent.Kind.EDITOR,
                source=SuppressionEvent.Source.EDITOR,
                detail=f"Suppressed by {request.user.get_username()}",
            )
            for subscriber in queryset
        )
        self.message_count(request, stopped, "suppressed")

    @admin.action(description="Reactivate (lift a suppression)", permissions=["change"])
    def reactivate(self, request, queryset):
        # Paused is the reader's own choice: only suppressions are lifted here.
        stopped = queryset.filter(status__in=SUPPRESSED)
        count = 0
        for subscriber in stopped:
            consent.reactivate(subscriber)
            count += 1
        self.message_count(request, count, "reactivated")
