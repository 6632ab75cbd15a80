"""Paper merges in the admin: what each merged, and undoing one."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from digest.desk.admin.read_only import ReadOnlyAdmin
from digest.desk.merges import CannotUnmerge, unmerge
from digest.models import Paper, PaperMerge


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
            result = unmerge(merge_id, undone_by=request.user)
        except CannotUnmerge as error:
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
