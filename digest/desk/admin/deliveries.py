"""Digest runs and deliveries in the admin: what went to whom, and retrying failures."""

from django.contrib import admin
from django.db.models import Count
from django.utils.html import format_html, format_html_join

from digest.desk.admin.read_only import ReadOnlyAdmin, RetryFailedMixin, deliveries_url
from digest.models import DeliveredPaper, Delivery, DigestRun


@admin.register(DigestRun)
class DigestRunAdmin(RetryFailedMixin, ReadOnlyAdmin):
    list_display = [
        "started_at",
        "now",
        "status",
        "planned",
        "sent",
        "skipped",
        "failed_link",
        "finished_at",
        "short_error",
    ]
    list_filter = ["status", "started_at"]
    show_full_result_count = False
    fields = [
        "started_at",
        "finished_at",
        "now",
        "status",
        "error",
        "planned",
        "sent",
        "skipped",
        "failed",
        "outcomes",
    ]
    readonly_fields = fields
    actions = ["retry_failed"]

    @admin.action(description="Retry the failed deliveries of these runs", permissions=["retry"])
    def retry_failed(self, request, queryset):
        self.retry(request, Delivery.objects.filter(run__in=queryset))

    @admin.display(description="failed", ordering="failed")
    @admin.display(description="error")
    def short_error(self, run: DigestRun) -> str:
        return run.error if len(run.error) <= 80 else f"{run.error[:79]}…"

    def failed_link(self, run: DigestRun):
        if not run.failed:
            return 0
        url = deliveries_url(run__id__exact=run.pk, status__exact=Delivery.Status.FAILED)
        return format_html('<a href="{}">{}</a>', url, run.failed)

    @admin.display(description="deliveries by outcome and reason")
    def outcomes(self, run: DigestRun) -> str:
        groups = (
            run.deliveries.order_by()
            .values_list("status", "error")
            .annotate(n=Count("pk"))
            .order_by("status", "-n")[:50]
        )
        labels = dict(Delivery.Status.choices)
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
            (
                (
                    deliveries_url(run__id__exact=run.pk, status__exact=status),
                    labels.get(status, status),
                    n,
                    error or "",
                )
                for status, error, n in groups
            ),
        )
        if not rows:
            return "No deliveries."
        return format_html(
            "<table><thead><tr><th>Status</th><th>Deliveries</th><th>Reason</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )


class DeliveredPaperInline(admin.TabularInline):
    model = DeliveredPaper
    fields = ["position", "paper", "score", "why"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("paper")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(RetryFailedMixin, ReadOnlyAdmin):
    list_display = [
        "subscriber",
        "period",
        "status",
        "run",
        "attempts",
        "sent_at",
        "short_error",
    ]
    list_filter = ["status", "period", "sent_at"]
    list_select_related = ["subscriber", "run"]
    search_fields = ["subscriber__email__ascii_icontains"]
    show_full_result_count = False
    fields = [
        "subscriber",
        "period",
        "run",
        "status",
        "created_at",
        "claimed_at",
        "sent_at",
        "attempts",
        "message_id",
        "esp_message_id",
        "error",
    ]
    readonly_fields = fields
    inlines = [DeliveredPaperInline]
    actions = ["retry_failed"]

    @admin.action(description="Retry these deliveries if they failed", permissions=["retry"])
    def retry_failed(self, request, queryset):
        self.retry(request, queryset)

    @admin.display(description="error")
    def short_error(self, delivery: Delivery) -> str:
        return delivery.error if len(delivery.error) <= 80 else f"{delivery.error[:79]}…"
