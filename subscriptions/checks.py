"""Deploy checks for the parts of consent that a missing setting would silently open up."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from subscriptions.webhooks import webhook_secrets


@register(Tags.security, deploy=True)
def check_webhook_secret(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Without a webhook secret the tracking webhooks answer 403 to everyone (subscriptions.
    webhooks.guard), so bounces and complaints go unrecorded: an error when an ESP sends the
    mail, a warning otherwise."""
    if webhook_secrets():
        return []
    hint = (
        "Set ANYMAIL_WEBHOOK_SECRET=user:password and give the same credentials to the ESP's "
        "webhook URL (https://user:password@host/anymail/<esp>/tracking/)."
    )
    if settings.EMAIL_BACKEND.startswith("anymail."):
        return [
            Error(
                "An ESP backend is configured but ANYMAIL_WEBHOOK_SECRET is not set: its bounce "
                "and complaint webhooks are refused (403).",
                hint=hint,
                id="subscriptions.E001",
            )
        ]
    return [
        Warning(
            "ANYMAIL_WEBHOOK_SECRET is not set: the ESP webhooks at /anymail/ answer 403 to "
            "every call, so no bounce or complaint is recorded.",
            hint=hint,
            id="subscriptions.W001",
        )
    ]


@register(Tags.security, deploy=True)
def check_mailgun_signing_key(app_configs=None, **kwargs) -> list[CheckMessage]:
    """anymail cannot verify a Mailgun webhook without its signing key: every call answers 400."""
    uses_mailgun = settings.EMAIL_BACKEND.startswith("anymail.backends.mailgun")
    keys = ("MAILGUN_WEBHOOK_SIGNING_KEY", "MAILGUN_API_KEY")
    if uses_mailgun and not any(settings.ANYMAIL.get(key) for key in keys):
        return [
            Error(
                "The Mailgun backend is configured without a webhook signing key: Mailgun's "
                "webhooks cannot be verified and answer 400.",
                hint="Set ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY (Mailgun: Sending > Webhooks).",
                id="subscriptions.E002",
            )
        ]
    return []
