"""The Subscriber admin from subscriptions/admin.py, with the digest preview added: only digest
may know about papers (subscriptions never imports digest), and the preview is a digest."""

from dataclasses import dataclass
from email import message_from_bytes, policy

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMultiAlternatives
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.csp import allow_inline_styles_of
from digest.delivery import composing
from subscriptions.admin import SubscriberAdmin
from subscriptions.models import Subscriber


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
