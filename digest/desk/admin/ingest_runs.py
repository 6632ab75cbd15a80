"""Ingest runs in the admin: what each read, kept and rejected, and running one now."""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from config.celery import BROKER_DOWN
from digest.desk import signals
from digest.desk.admin.read_only import ReadOnlyAdmin
from digest.desk.dashboard import ingest_runs_for_lists
from digest.models import IngestRun


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
        "cut_counts",
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
            signals.ingest_requested.send(IngestRun)
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
