"""The payload shapes the ESPs document, and a client that posts them as an ESP would."""

import hashlib
import hmac
import json
import time

from django.test import Client

SECRET = "paperboy-hooks:s3cret-for-tests"
MAILGUN_KEY = "key-mailgun-webhook-signing-for-tests"
POSTMARK_URL = "/anymail/postmark/tracking/"
MAILGUN_URL = "/anymail/mailgun/tracking/"
MAILJET_URL = "/anymail/mailjet/tracking/"  # sends events in batches


def postmark_bounce(email: str, *, type_: str = "HardBounce", message_id: str = "m-1") -> dict:
    """Postmark's bounce webhook (RecordType Bounce); its spam complaints use the same shape."""
    names = {"HardBounce": ("Hard bounce", 1), "SoftBounce": ("Soft bounce", 4096),
             "SpamComplaint": ("Spam complaint", 512)}  # fmt: skip
    name, code = names[type_]
    return {
        "RecordType": "SpamComplaint" if type_ == "SpamComplaint" else "Bounce",
        "MessageStream": "outbound",
        "ID": 4323372036854775807,
        "Type": type_,
        "TypeCode": code,
        "Name": name,
        "Tag": "digest",
        "MessageID": message_id,
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "digest@example.com",
        "BouncedAt": "2026-11-25T05:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": type_ != "SoftBounce",
        "CanActivate": True,
        "Subject": "Your papers for today",
    }


def postmark_delivery(email: str) -> dict:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": "m-9",
        "Recipient": email,
        "Tag": "digest",
        "DeliveredAt": "2026-11-25T05:40:01Z",
        "Details": "Test delivery webhook details",
        "Metadata": {},
    }


def mailgun_event(email: str, event: str, *, severity: str = "", message_id: str = "mg-1") -> dict:
    timestamp = str(int(time.time()))
    token = hashlib.sha256(f"{email}{event}{message_id}".encode()).hexdigest()[:50]
    signature = hmac.new(MAILGUN_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    data = {
        "event": event,
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": 1521233123.501324,
        "log-level": "error" if event == "failed" else "warn",
        "recipient": email,
        "recipient-domain": email.split("@")[1],
        "tags": ["digest"],
        "user-variables": {},
        "envelope": {"sender": "digest@example.com", "transport": "smtp", "targets": email},
        "message": {
            "headers": {
                "to": email,
                "message-id": f"{message_id}@mg.example.com",
                "from": "Paperboy <digest@example.com>",
                "subject": "Your papers for today",
            },
            "attachments": [],
            "size": 111,
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
    }
    if event == "failed":
        data["severity"] = severity
        data["reason"] = "bounce" if severity == "permanent" else "generic"
        data["delivery-status"] = {
            "attempt-no": 1,
            "code": 550 if severity == "permanent" else 452,
            "message": "5.1.1 No such user" if severity == "permanent" else "4.2.2 Mailbox full",
            "description": "",
            "session-seconds": 0.5,
        }
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()},
        "event-data": data,
    }


def post(client: Client, url: str, payload: dict | list):
    return client.post(url, json.dumps(payload), content_type="application/json")
