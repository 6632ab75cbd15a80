"""Batch sending, for ESPs whose API takes many messages in one call (ESP_BATCH_SIZE > 0).

One anymail message carries up to ESP_BATCH_SIZE recipients; each reader's whole digest (subject,
text, HTML) is their merge data, rendered into a pass-through template stored at the ESP
(ESP_BATCH_TEMPLATE: subject `{{subject}}`, text `{{{text_body}}}`, HTML `{{{html_body}}}`), and
their headers (Message-ID, List-Unsubscribe) are their merge headers. Each recipient's status
comes back into their delivery: accepted ones are marked sent together, refused ones fail (and the
address is suppressed), and only the ones that failed otherwise are retried.
"""

import json
import logging
import re
from collections.abc import Sequence

from anymail.exceptions import AnymailRecipientsRefused, AnymailRequestsAPIError
from anymail.message import AnymailMessage
from django.conf import settings
from django.utils import timezone

from digest.delivery import send_rate
from digest.delivery.claims import Fence, claim, new_token
from digest.delivery.messages import Digest, compose, load_digests
from digest.delivery.outcomes import Sent, mark_sent
from digest.delivery.send_results import Outcome, SendResult, record_failure
from digest.delivery.sending import sendable

logger = logging.getLogger(__name__)
ACCEPTED = {"sent", "queued"}
REFUSED = {"rejected", "invalid"}


class RecipientNotAccepted(ConnectionError):
    """The ESP took the batch but not this recipient's message ("failed", "unknown"): tried
    again later, like a connection error."""


def batch_size(connection) -> int:
    """How many recipients one call carries for this connection; 0: send one by one."""
    if settings.ESP_BATCH_SIZE <= 0 or not settings.ESP_BATCH_TEMPLATE:
        return 0
    if not type(connection).__module__.startswith("anymail.backends"):
        return 0
    per_second = settings.ESP_MAX_PER_SECOND
    return min(settings.ESP_BATCH_SIZE, per_second) if per_second > 0 else settings.ESP_BATCH_SIZE


def batch_message(digests: Sequence[Digest]) -> AnymailMessage:
    """One message for the readers of `digests` (one address each), each with their digest."""
    message = AnymailMessage(from_email=settings.DEFAULT_FROM_EMAIL, to=[])
    message.template_id = settings.ESP_BATCH_TEMPLATE
    message.merge_data, message.merge_headers = {}, {}
    for digest in digests:
        email = compose(digest)
        address = email.to[0]
        message.to.append(address)
        message.merge_data[address] = {
            "subject": email.subject,
            "text_body": email.body,
            "html_body": email.alternatives[0].content,
        }
        message.merge_headers[address] = {
            name: value for name, value in email.extra_headers.items() if name != "Date"
        }
    return message


def send_batched(delivery_ids: Sequence[int], connection) -> dict[int, SendResult]:
    """Claim the chunk in one UPDATE and send it in calls of batch_size(connection); right
    before each call the fence checks which of its deliveries are still ours."""
    token, now = new_token(), timezone.now()
    claimed = claim(delivery_ids, now, token)
    fence = Fence([pk for pk in delivery_ids if pk in claimed], token, now)
    results = {pk: SendResult(Outcome.NOT_CLAIMED) for pk in delivery_ids if pk not in claimed}
    digests = load_digests(claimed)
    ready = sendable(
        [digests[pk] for pk in delivery_ids if pk in claimed], token=token, results=results
    )
    size = batch_size(connection)
    sent: list[Sent] = []
    try:
        connection.open()
        for batch in _batches(ready, size):
            ours = fence.ours_of([digest.delivery.pk for digest in batch], timezone.now())
            for digest in batch:
                if digest.delivery.pk not in ours:
                    logger.warning(
                        "delivery %s was taken over before it was sent", digest.delivery.pk
                    )
                    results[digest.delivery.pk] = SendResult(
                        Outcome.NOT_CLAIMED, error="taken over"
                    )
            batch = [digest for digest in batch if digest.delivery.pk in ours]
            if batch:
                send_rate.take(len(batch))
                results.update(_send_one_batch(batch, connection, token, sent))
    except send_rate.SendRateExceeded as error:
        for digest in ready:
            if digest.delivery.pk not in results:
                results[digest.delivery.pk] = record_failure(digest.delivery, token, error)
    finally:
        connection.close()
        for delivery_id in mark_sent(sent, token).taken_over:
            logger.warning("delivery %s was taken over while being sent", delivery_id)
    return results


def _batches(digests: Sequence[Digest], size: int):
    """Runs of up to `size` digests with one address each (merge data is keyed by address)."""
    batch, addresses = [], set()
    for digest in digests:
        address = digest.delivery.subscriber.email.lower()
        if len(batch) == size or address in addresses:
            yield batch
            batch, addresses = [], set()
        batch.append(digest)
        addresses.add(address)
    if batch:
        yield batch


def _send_one_batch(batch: Sequence[Digest], connection, token: str, sent: list[Sent]) -> dict:
    message = batch_message(batch)
    try:
        connection.send_messages([message])
        statuses = message.anymail_status.recipients
    except AnymailRecipientsRefused:
        statuses = message.anymail_status.recipients  # every one refused; each says why
    except AnymailRequestsAPIError as error:
        statuses = _statuses_of_a_failed_batch(error, message)
        if statuses is None:  # the call failed as a whole: every digest of it is retried
            return {d.delivery.pk: record_failure(d.delivery, token, error) for d in batch}
    results = {}
    for digest, address in zip(batch, message.to, strict=True):
        status = statuses.get(address)
        delivery = digest.delivery
        if status is not None and status.status in ACCEPTED:
            esp_id = "" if status.message_id is None else str(status.message_id)[:255]
            headers = message.merge_headers[address]
            sent.append(Sent(delivery.pk, timezone.now(), headers["Message-ID"], esp_id))
            results[delivery.pk] = SendResult(Outcome.SENT)
        elif status is not None and status.status in REFUSED:
            refusal = AnymailRecipientsRefused(f"the ESP refused {address}: {status.status}")
            results[delivery.pk] = record_failure(delivery, token, refusal)
        else:
            state = "no status" if status is None else status.status
            error = RecipientNotAccepted(f"the ESP did not accept {address}: {state}")
            results[delivery.pk] = record_failure(delivery, token, error)
    return results


def _statuses_of_a_failed_batch(error: AnymailRequestsAPIError, message) -> dict | None:
    """Postmark answers a batch with one result per message, in order, and anymail raises for
    the whole call when one of them has an error code it does not map to a recipient status,
    although the others were accepted. Those are read back here; None if the answer is not a
    per-message list (the call failed as a whole)."""
    from anymail.message import AnymailRecipientStatus

    try:
        answers = json.loads(error.response.content)
    except (AttributeError, TypeError, ValueError):
        return None
    if not isinstance(answers, list) or len(answers) != len(message.to):
        return None
    statuses = {}
    for address, answer in zip(message.to, answers, strict=True):
        code = answer.get("ErrorCode", 0) if isinstance(answer, dict) else None
        if code == 0:
            statuses[address] = AnymailRecipientStatus(answer.get("MessageID"), "sent")
        elif code == 406:  # an inactive address (hard bounce, complaint)
            statuses[address] = AnymailRecipientStatus(None, "rejected")
        elif code == 300 and re.match(r"(Invalid|Error parsing) 'To'", answer.get("Message", "")):
            statuses[address] = AnymailRecipientStatus(None, "invalid")
        else:
            statuses[address] = AnymailRecipientStatus(None, "failed")
    return statuses
