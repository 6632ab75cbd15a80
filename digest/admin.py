"""Curation: the editor's desk for papers, ingest runs, digest runs and deliveries.

The Subscriber admin comes from subscriptions/admin.py; this module registers a subclass of it with
the digest preview added, because only digest may know about papers (subscriptions never imports
digest), and the preview is a digest.
"""

from dataclasses import dataclass
from email import message_from_bytes, policy

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMultiAlternatives
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

import config.lookups  # noqa: F401 - registers ascii_icontains for search_fields
from config.celery import BROKER_DOWN
from config.csp import allow_inline_styles_of
from digest import composing, curation, tasks
from digest.dashboard import ingest_runs_for_lists
from digest.models import DeliveredPaper, Delivery, DigestRun, IngestRun, Paper, PaperMerge
from subscriptions.admin import SubscriberAdmin
from subscriptions.models import Subscriber

# The editor's lists are wide (papers, deliveries): give them the whole window.
admin.site.enable_nav_sidebar = False
# The merge page shows the papers side by side: a few columns, not a page of them.
MAX_PAPERS_PER_MERGE = 10


class LinesField(forms.CharField):
    """A list of strings (a JSON field) edited as one item per line."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    def has_changed(self, initial, data) -> bool:
        return list(initial or []) != self.to_python(data)


class PaperForm(forms.ModelForm):
    authors = LinesField(required=False, help_text="One author per line.")
    categories = LinesField(required=False, help_text="One category per line.")
    url = forms.URLField(required=False, max_length=500, assume_scheme="https")
    pdf_url = forms.URLField(required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = Paper
        fields = [*curation.INGESTED_FIELDS, "hidden", "pinned"]
        # Wraps instead of cutting a long title off at the input's edge.
        widgets = {"title": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"})}

    def clean_title(self) -> str:
        return " ".join(self.cleaned_data["title"].split())  # a title stays on one line


class SourceFilter(admin.SimpleListFilter):
    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        formats = (
            IngestRun.objects.exclude(format__in=["", "auto"])  # "auto": failed before sniffing
            .order_by("format")
            .values_list("format", flat=True)
            .distinct()
        )
        return [(name, name) for name in formats]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        # `sources` is a JSON list of format names: match the quoted name in its text.
        return queryset.filter(sources__icontains=f'"{self.value()}"')


class HasUpvotesFilter(admin.SimpleListFilter):
    title = "upvotes"
    parameter_name = "has_upvotes"

    def lookups(self, request, model_admin):
        return [("yes", "Has upvotes"), ("no", "No upvotes")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(upvotes__gt=0)
        if self.value() == "no":
            return queryset.filter(upvotes=0)
        return queryset


def sent_digest_count() -> Coalesce:
    """How many sent digests listed the paper, as a subquery (no query per row)."""
    counts = (
        DeliveredPaper.objects.filter(paper=OuterRef("pk"), delivery__status=Delivery.Status.SENT)
        .order_by()
        .values("paper")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), 0)


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    form = PaperForm
    list_display = [
        "title",
        "arxiv_id",
        "upvotes",
        "first_seen",
        "source_list",
        "hidden",
        "pinned",
        "digest_count",
    ]
    list_filter = [SourceFilter, "first_seen", "hidden", "pinned", HasUpvotesFilter]
    search_fields = [
        "title__ascii_icontains",
        "abstract__ascii_icontains",
        "authors__ascii_icontains",
        "arxiv_id__ascii_icontains",
    ]
    ordering = ["-first_seen", "-upvotes"]
    show_full_result_count = False
    actions = ["hide", "unhide", "pin", "unpin", "merge_duplicates", "forget_edits"]
    fieldsets = [
        (
            None,
            {"fields": ["title", "abstract", "authors", "author_count", "hidden", "pinned"]},
        ),
        (
            "Links and metadata",
            {"fields": ["arxiv_id", "arxiv_version", "url", "pdf_url", "published_on"]},
        ),
        (
            "Sightings",
            {
                "fields": [
                    "upvotes",
                    "categories",
                    "sources",
                    "first_seen",
                    "last_seen",
                    "seen_count",
                    "digest_count",
                ]
            },
        ),
        ("Curation", {"fields": ["title_key", "edited_fields", "merge_history"]}),
    ]
    readonly_fields = [
        "arxiv_id",
        "arxiv_version",
        "sources",
        "first_seen",
        "last_seen",
        "seen_count",
        "digest_count",
        "title_key",
        "edited_fields",
        "merge_history",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(digest_count=sent_digest_count())

    def has_add_permission(self, request) -> bool:
        return False  # papers come from ingest

    @admin.display(description="included in digests", ordering="digest_count")
    def digest_count(self, paper: Paper) -> int:
        return paper.digest_count

    @admin.display(description="sources")
    def source_list(self, paper: Paper) -> str:
        return ", ".join(paper.sources)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            curation.record_edits(obj, form.changed_data)
        super().save_model(request, obj, form, change)

    def _flag(self, request, queryset, *, message: str, **values) -> None:
        count = queryset.update(**values)
        self.message_user(request, f"{count} paper{'s' if count != 1 else ''} {message}.")

    @admin.action(description="Hide from digests", permissions=["change"])
    def hide(self, request, queryset):
        self._flag(request, queryset, hidden=True, message="hidden from digests")

    @admin.action(description="Unhide (allow in digests)", permissions=["change"])
    def unhide(self, request, queryset):
        self._flag(request, queryset, hidden=False, message="allowed in digests again")

    @admin.action(description="Pin (sent first to everyone it matches)", permissions=["change"])
    def pin(self, request, queryset):
        self._flag(request, queryset, pinned=True, message="pinned")

    @admin.action(description="Unpin", permissions=["change"])
    def unpin(self, request, queryset):
        self._flag(request, queryset, pinned=False, message="unpinned")

    @admin.action(
        description="Let ingest update the fields an editor changed", permissions=["change"]
    )
    def forget_edits(self, request, queryset):
        self._flag(request, queryset, edited_fields=[], message="handed back to ingest")

    @admin.action(description="Merge duplicates (keep the richest)", permissions=["change"])
    def merge_duplicates(self, request, queryset):
        """Asks first, on a page showing the papers side by side; merges on its confirm button."""
        ids = list(queryset.values_list("pk", flat=True))
        if len(ids) < 2:
            self.message_user(request, "Select at least two papers to merge.", messages.WARNING)
            return None
        if len(ids) > MAX_PAPERS_PER_MERGE:
            self.message_user(
                request,
                f"Select at most {MAX_PAPERS_PER_MERGE} papers to merge at once.",
                messages.WARNING,
            )
            return None
        keep = request.POST.get("keep", "")
        keep_id = int(keep) if keep.isdigit() and int(keep) in ids else None
        if request.POST.get("post") != "yes" or keep_id is None:
            preview = curation.preview_merge(ids, keep=keep_id)
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Merge these papers?",
                "preview": preview,
                "threshold": curation.LOOKS_DIFFERENT_BELOW,
                "action_name": "merge_duplicates",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/digest/paper/merge_confirmation.html", context)
        merge = curation.merge_papers(ids, keep=keep_id, merged_by=request.user)
        merged = "; ".join(f"#{paper.pk} {paper.title!r}" for paper in merge.removed)
        self.log_change(request, merge.kept, f"Merged duplicates into this paper: {merged}")
        self.message_user(
            request,
            format_html(
                'Merged {} duplicate(s) into <a href="{}">{}</a>; {} digest item(s) moved. '
                '<a href="{}">Undo this merge</a>.',
                len(merge.removed),
                reverse("admin:digest_paper_change", args=[merge.kept.pk]),
                merge.kept.title,
                merge.moved_deliveries,
                reverse("admin:digest_papermerge_change", args=[merge.record.pk]),
            ),
        )
        return None

    @admin.display(description="merged into this paper")
    def merge_history(self, paper: Paper) -> str:
        merges = list(paper.merges.order_by("-merged_at"))
        if not merges:
            return "Nothing."
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{} merge #{}</a>: {}{}',
            (
                (
                    reverse("admin:digest_papermerge_change", args=[merge.pk]),
                    merge.merged_at.strftime("%Y-%m-%d %H:%M"),
                    merge.pk,
                    "; ".join(merge.merged_titles),
                    " (undone)" if merge.undone_at else "",
                )
                for merge in merges
            ),
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the system writes; editors look, and act through the actions."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PaperMerge)
class PaperMergeAdmin(ReadOnlyAdmin):
    """Every merge an editor made, and the button that undoes one."""

    list_display = ["merged_at", "kept_link", "merged_away", "similarity_shown", "undone_at"]
    list_filter = ["merged_at", ("undone_at", admin.EmptyFieldListFilter)]
    fields = [
        "merged_at",
        "merged_by",
        "kept_link",
        "merged_away",
        "similarity_shown",
        "undone_at",
        "undone_by",
    ]
    readonly_fields = fields
    actions = ["undo_merges"]
    change_form_template = "admin/digest/papermerge/change_form.html"

    def has_undo_permission(self, request) -> bool:
        return request.user.has_perm("digest.change_paper")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_undo": self.has_undo_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="kept paper")
    def kept_link(self, merge: PaperMerge) -> str:
        if not Paper.objects.filter(pk=merge.kept_id).exists():
            return f"#{merge.kept_id} (merged away since)"
        url = reverse("admin:digest_paper_change", args=[merge.kept_id])
        return format_html('<a href="{}">#{}</a>', url, merge.kept_id)

    @admin.display(description="merged away")
    def merged_away(self, merge: PaperMerge) -> str:
        return "; ".join(merge.merged_titles)

    @admin.display(description="title similarity", ordering="similarity")
    def similarity_shown(self, merge: PaperMerge) -> str:
        return f"{merge.similarity:.0%}"

    def get_urls(self):
        undo = self.admin_site.admin_view(self.undo_view)
        return [
            path("<int:merge_id>/undo/", undo, name="digest_papermerge_undo"),
            *super().get_urls(),
        ]

    def undo_view(self, request, merge_id: int):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_undo_permission(request):
            raise PermissionDenied
        self._undo(request, merge_id)
        return HttpResponseRedirect(reverse("admin:digest_papermerge_change", args=[merge_id]))

    @admin.action(description="Undo the selected merges (restore the papers)", permissions=["undo"])
    def undo_merges(self, request, queryset):
        for merge_id in queryset.order_by("-merged_at").values_list("pk", flat=True):
            self._undo(request, merge_id)

    def _undo(self, request, merge_id: int) -> None:
        try:
            result = curation.unmerge(merge_id, undone_by=request.user)
        except curation.CannotUnmerge as error:
            self.message_user(request, f"Not undone: {error}.", messages.ERROR)
            return
        restored = "; ".join(f"#{paper.pk} {paper.title!r}" for paper in result.restored)
        self.log_change(request, result.kept, f"Undid merge #{merge_id}: restored {restored}")
        self.message_user(
            request,
            format_html(
                "Merge #{} undone: {} restored, with {} digest item(s) and {} rating(s).",
                merge_id,
                format_html_join(
                    ", ",
                    '<a href="{}">{}</a>',
                    (
                        (reverse("admin:digest_paper_change", args=[paper.pk]), paper.title)
                        for paper in result.restored
                    ),
                ),
                result.restored_deliveries,
                result.restored_ratings,
            ),
        )


@admin.register(IngestRun)
class IngestRunAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "source_name",
        "format",
        "status",
        "records",
        "created",
        "updated",
        "unchanged",
        "rejected_count",
        "finished_at",
    ]
    list_filter = ["status", "started_at"]
    search_fields = ["source__ascii_icontains"]
    show_full_result_count = False
    fields = [
        "source",
        "format",
        "status",
        "started_at",
        "finished_at",
        "records",
        "created",
        "updated",
        "unchanged",
        "note",
        "error",
        "rejected_count",
        "rejected_records",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        if request.resolver_match and request.resolver_match.url_name.endswith("_changelist"):
            return ingest_runs_for_lists()
        return super().get_queryset(request)

    def get_urls(self):
        run_now = self.admin_site.admin_view(self.run_ingest_now)
        return [path("run/", run_now, name="digest_ingestrun_run"), *super().get_urls()]

    def run_ingest_now(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("digest.add_ingestrun"):
            raise PermissionDenied
        try:
            tasks.ingest_sources.delay()
        except BROKER_DOWN as error:
            self.message_user(
                request,
                f"No ingest was started: the task queue cannot be reached ({error}). "
                "Try again when it is back, or run `manage.py ingest` on the server.",
                messages.ERROR,
            )
        else:
            self.message_user(
                request,
                f"An ingest of {len(settings.DIGEST_SOURCES)} configured source(s) was "
                "started; its runs appear below as they finish.",
            )
        return HttpResponseRedirect(reverse("admin:digest_ingestrun_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_run_ingest": request.user.has_perm("digest.add_ingestrun"),
        }
        return super().changelist_view(request, extra_context)

    @admin.display(description="source", ordering="source")
    def source_name(self, run: IngestRun) -> str:
        return run.source if len(run.source) <= 60 else f"…{run.source[-59:]}"

    @admin.display(description="rejected records")
    def rejected_records(self, run: IngestRun) -> str:
        if not run.rejected:
            return "None"
        shown = (
            f"The first {len(run.rejected)} of {run.rejected_count}."
            if run.rejected_count > len(run.rejected)
            else ""
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td></tr>",
            ((item.get("where", ""), item.get("why", "")) for item in run.rejected),
        )
        return format_html(
            "<p>{}</p><table><thead><tr><th>Where</th><th>Why</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            shown,
            rows,
        )


def deliveries_url(**filters) -> str:
    return f"{reverse('admin:digest_delivery_changelist')}?{urlencode(filters)}"


class RetryFailedMixin:
    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("digest.change_delivery")

    def retry(self, request, failed) -> None:
        ids = list(failed.filter(status=Delivery.Status.FAILED).values_list("pk", flat=True))
        try:
            count = curation.retry_deliveries(ids)
        except BROKER_DOWN as error:
            # Reset to planned: the beat queues them again once the queue is back.
            self.message_user(
                request,
                f"The deliveries will be sent again when the task queue is back: it cannot be "
                f"reached now ({error}).",
                messages.WARNING,
            )
        else:
            self.message_user(request, f"{count} failed deliveries queued to send again.")


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


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    sender: str
    to: str
    headers: list[tuple[str, str]]
    text: str
    html: str


def rendered_email(message: EmailMultiAlternatives) -> RenderedEmail:
    """The message as it would go over the wire, parsed back: what the reader's client shows."""
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    html = parsed.get_body(("html",))
    text = parsed.get_body(("plain",))
    shown = {"list-unsubscribe", "list-unsubscribe-post", "list-id", "reply-to"}
    return RenderedEmail(
        subject=str(parsed["Subject"]),
        sender=str(parsed["From"]),
        to=str(parsed["To"]),
        headers=[(name, str(value)) for name, value in parsed.items() if name.lower() in shown],
        text=text.get_content() if text else "",
        html=html.get_content() if html else "",
    )


class SubscriberWithPreviewAdmin(SubscriberAdmin):
    """The subscriptions app's Subscriber admin plus a preview of the digest they would get."""

    change_form_template = "admin/digest/subscriber_change_form.html"
    list_display = [*SubscriberAdmin.list_display, "preview_link"]

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_preview"
        return [path("<path:object_id>/preview/", preview, name=name), *super().get_urls()]

    @admin.display(description="digest")
    def preview_link(self, subscriber: Subscriber) -> str:
        url = reverse("admin:subscriptions_subscriber_preview", args=[subscriber.pk])
        return format_html('<a href="{}">Preview</a>', url)

    def preview_view(self, request, object_id: str):
        subscriber = self.get_object(request, unquote(object_id))
        if subscriber is None:
            raise Http404("No such subscriber.")
        if not self.has_view_permission(request, subscriber):
            raise PermissionDenied
        preview = composing.editor_preview(subscriber)
        email = rendered_email(preview.message) if preview.message else None
        if email:  # the srcdoc frame lives under this page's policy
            allow_inline_styles_of(request, email.html)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": subscriber,
            "title": f"The digest {subscriber.email} would get now",
            "email": email,
            "error": preview.error,
            "today": preview.today,
            "today_titles": preview.today_titles,
        }
        return TemplateResponse(request, "admin/digest/subscriber_preview.html", context)


admin.site.unregister(Subscriber)
admin.site.register(Subscriber, SubscriberWithPreviewAdmin)
