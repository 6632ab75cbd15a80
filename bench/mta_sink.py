"""A local SMTP server that keeps a message once it has read the "." that ends it, as an MTA does.

Postfix's smtpd, having read the ".", queues the message and only then writes its "250"; a client
gone by then finds the message delivered all the same. aiosmtpd instead cancels its handler when
the client's connection closes, so a message whose "." came in together with the close of a
SIGKILLed worker is dropped unseen. bench/kill_workers.py counts what reaches readers, so it
needs the MTA's behaviour: this server records each message (recipient, Message-ID) in the same
step that reads its ".", before it looks at what follows.

Enough of SMTP for smtplib and Django's backend: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT.
"""

import asyncio
from collections.abc import Callable
from email.parser import BytesHeaderParser


class RecordingSMTP(asyncio.Protocol):
    def __init__(self, record: Callable[[str, str], None]) -> None:
        self.record = record
        self.buffer = b""
        self.recipients: list[str] = []
        self.data: list[bytes] | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.reply("220 sink ESMTP")

    def reply(self, line: str) -> None:
        self.transport.write(line.encode() + b"\r\n")

    def data_received(self, chunk: bytes) -> None:
        *lines, self.buffer = (self.buffer + chunk).split(b"\r\n")
        for line in lines:
            if self.data is not None:
                self.data_line(line)
            else:
                self.command(line.decode("ascii", "replace"))

    def data_line(self, line: bytes) -> None:
        if line != b".":
            self.data.append(line[1:] if line.startswith(b".") else line)
            return
        content = b"\r\n".join(self.data) + b"\r\n"
        headers = BytesHeaderParser().parsebytes(content)
        for recipient in self.recipients:
            self.record(recipient, str(headers["Message-ID"]))
        self.data, self.recipients = None, []
        self.reply("250 OK queued")

    def command(self, line: str) -> None:
        verb, _, argument = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            self.reply("250 sink")
        elif verb in ("HELO", "NOOP"):
            self.reply("250 OK")
        elif verb == "MAIL":
            self.recipients = []
            self.reply("250 OK")
        elif verb == "RCPT":
            self.recipients.append(argument.split(":", 1)[1].strip().strip("<>"))
            self.reply("250 OK")
        elif verb == "DATA":
            self.data = []
            self.reply("354 End data with <CR><LF>.<CR><LF>")
        elif verb == "RSET":
            self.recipients, self.data = [], None
            self.reply("250 OK")
        elif verb == "QUIT":
            self.reply("221 Bye")
            self.transport.close()
        else:
            self.reply("502 Command not implemented")


def serve_recording_smtp(port: int, log_path: str, ready) -> None:
    """Serve on 127.0.0.1:`port`, appending a line per message kept to `log_path`: recipient,
    Message-ID (a tab between)."""
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def record(recipient: str, message_id: str) -> None:
        log.write(f"{recipient}\t{message_id}\n")

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: RecordingSMTP(record), "127.0.0.1", port)
        ready.set()
        await server.serve_forever()

    asyncio.run(serve())
