"""The papers in the admin: edit (ingest respects it), hide, pin, merge duplicates."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from digest.desk import curation
from digest.desk.merge_preview import LOOKS_DIFFERENT_BELOW, preview_merge
from digest.desk.merges import MergeConflict, gone_papers, merge_papers
from digest.models import DeliveredPaper, Delivery, IngestRun, Paper

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
        chosen = [int(pk) for pk in request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)]
        gone = "" if request.POST.get("select_across") == "1" else gone_papers(chosen)
        if gone:  # another editor's merge took some of them away since this page was shown
            self.message_user(
                request,
                f"Nothing was merged: {gone} since you chose it. Choose the papers again.",
                messages.ERROR,
            )
            return None
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
            preview = preview_merge(ids, keep=keep_id)
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Merge these papers?",
                "preview": preview,
                "threshold": LOOKS_DIFFERENT_BELOW,
                "action_name": "merge_duplicates",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/digest/paper/merge_confirmation.html", context)
        try:
            merge = merge_papers(ids, keep=keep_id, merged_by=request.user)
        except MergeConflict as conflict:  # a merge committed while this one was on its way
            self.message_user(request, f"Nothing was merged: {conflict}.", messages.ERROR)
            return None
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
