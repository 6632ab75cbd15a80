"""Deploy checks for the parts of consent that a missing setting would silently open up."""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register


@register(Tags.security, deploy=True)
def check_webhook_secret(app_configs=None, **kwargs) -> list[CheckMessage]:
    """Without a webhook secret, anymail only warns and accepts any POST: anyone could then
    suppress any reader with a forged bounce or complaint."""
    uses_esp = settings.EMAIL_BACKEND.startswith("anymail.")
    if uses_esp and not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return [
            Error(
                "An ESP backend is configured but ANYMAIL_WEBHOOK_SECRET is not set.",
                hint="Set ANYMAIL_WEBHOOK_SECRET=user:password and give the same credentials "
                "to the ESP's webhook URL.",
                id="subscriptions.E001",
            )
        ]
    return []
