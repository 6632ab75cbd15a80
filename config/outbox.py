"""The local default email backend: every message becomes one .eml file under EMAIL_FILE_PATH
(oldest first by modification time)."""

import hashlib
import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class OutboxEmailBackend(BaseEmailBackend):
    def __init__(self, *, file_path: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.outbox = Path(file_path or settings.EMAIL_FILE_PATH)

    def send_messages(self, email_messages) -> int:
        self.outbox.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            mime = message.message()
            # Named after the Message-ID, like a mailbox that keeps one copy of a message: a
            # message handed over again (same Message-ID) replaces its file instead of doubling.
            name = hashlib.sha256(str(mime["Message-ID"]).encode()).hexdigest()[:24] + ".eml"
            temporary = self.outbox / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
            temporary.write_bytes(mime.as_bytes(linesep="\n"))
            temporary.rename(self.outbox / name)  # readers never see a half-written file
            sent += 1
        return sent
