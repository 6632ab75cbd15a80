"""Every email is a subject / text / HTML triple of templates under templates/emails/."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def render_email(name: str, context: dict) -> tuple[str, str, str]:
    """Render emails/<name>-subject.txt, -body.txt and -body.html."""
    subject = " ".join(render_to_string(f"emails/{name}-subject.txt", context).split())
    text = render_to_string(f"emails/{name}-body.txt", context)
    html = render_to_string(f"emails/{name}-body.html", context)
    return subject, text, html


def build_email(
    name: str, to: str, context: dict, *, headers: dict[str, str] | None = None
) -> EmailMultiAlternatives:
    subject, text, html = render_email(name, context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=headers or {},
    )
    message.attach_alternative(html, "text/html")
    return message


def send_email(
    name: str, to: str, context: dict, *, headers: dict[str, str] | None = None
) -> EmailMultiAlternatives:
    message = build_email(name, to, context, headers=headers)
    message.send()
    return message
