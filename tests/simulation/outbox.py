"""An outbox that keeps every hand-over: config.outbox names a file after its Message-ID (so a
message handed over twice replaces its file, as a mailbox would keep one copy); the month
simulation wants to see a second hand-over, so here each one gets its own file."""

import uuid

from config.outbox import OutboxEmailBackend


class EveryHandoverOutbox(OutboxEmailBackend):
    def send_messages(self, email_messages) -> int:
        self.outbox.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            name = f"{uuid.uuid4().hex}.eml"
            temporary = self.outbox / f".{name}.tmp"
            temporary.write_bytes(message.message().as_bytes(linesep="\n"))
            temporary.rename(self.outbox / name)  # readers never see a half-written file
        return len(email_messages)
