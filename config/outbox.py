"""The local default email backend: every message becomes one .eml file under EMAIL_FILE_PATH
(oldest first by modification time)."""

import errno
import hashlib
import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend


class OutboxFull(OSError):
    """The outbox could not take a message (its disk is full, or the write failed): the message
    was not stored and no partial file is left behind. An OSError, so sending retries it later."""


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
            self._write(name, mime.as_bytes(linesep="\n"))
            sent += 1
        return sent

    def _write(self, name: str, content: bytes) -> None:
        """Write a .tmp file, then rename it: readers never see a half-written file, and a
        failed write (ENOSPC) removes its .tmp file before saying so."""
        temporary = self.outbox / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            with temporary.open("wb") as file:
                file.write(content)
            temporary.rename(self.outbox / name)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            reason = "the disk is full" if error.errno == errno.ENOSPC else str(error)
            raise OutboxFull(
                error.errno, f"outbox {self.outbox} could not store a message: {reason}"
            ) from error
