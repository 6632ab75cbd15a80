"""What the admin pages of system-written records share: look, and act through actions."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.http import urlencode

from config.celery import BROKER_DOWN
from digest.desk import curation, signals
from digest.models import Delivery


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records the system writes; editors look, and act through the actions."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def deliveries_url(**filters) -> str:
    return f"{reverse('admin:digest_delivery_changelist')}?{urlencode(filters)}"


class RetryFailedMixin:
    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("digest.change_delivery")

    def retry(self, request, failed) -> None:
        ids = list(failed.filter(status=Delivery.Status.FAILED).values_list("pk", flat=True))
        try:
            count = curation.retry_deliveries(ids)
            if count:
                signals.resend_requested.send(Delivery, delivery_ids=ids)
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
