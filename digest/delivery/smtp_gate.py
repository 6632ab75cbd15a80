"""Handing a message to an SMTP server up to its last line, and that line only once the claim
holder lets it through.

An SMTP server takes a message at the "." that ends its DATA, and not before: when the connection
closes first (a worker killed, or a sender withholding the message) the server accepts nothing.
The sender thread writes all of a message but its "." and waits at the gate; the thread that
holds the claim marks the message sent and writes the "." itself, right before it commits that
mark (smtp_sending). Once written, the kernel delivers it even if the worker is killed the next
instant.
"""

import functools
import re
import socket
import threading
from collections.abc import Callable

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import EmailMessage, sanitize_address

from digest.delivery.messages import wire_bytes

_END_OF_DATA = b"\r\n.\r\n"
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9-]{1,63}"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")


class Withheld(Exception):
    """The message was not let through: its connection was closed before the end of its DATA,
    so the server accepted nothing."""


class Gate:
    """One message's final ".": the sender thread brings the message to it (`arrive`) and waits;
    the claim holder waits for that (`reached`), writes the "." itself (`let_through`) or not,
    and then lets the sender thread go on (`release`): to read the server's answer, or, withheld,
    to close the connection."""

    def __init__(self) -> None:
        self._arrived = threading.Event()
        self._released = threading.Event()
        self._write_end: Callable[[], None] | None = None
        self._passed = False
        self._error: Exception | None = None

    # The sender thread's side.
    def arrive(self, write_end: Callable[[], None]) -> None:
        """All of the message but its "." is written: wait for the claim holder. Withheld if it
        did not write the "."; the error of writing it if that failed."""
        self._write_end = write_end
        self._arrived.set()
        self._released.wait()
        if self._error is not None:
            raise self._error
        if not self._passed:
            raise Withheld("its claim was no longer ours")

    def leave(self) -> None:
        """The sender thread is done with this message, having come to the gate or not (an error
        before: nothing was accepted)."""
        self._arrived.set()

    # The claim holder's side.
    def reached(self) -> bool:
        """Wait until the message is at the gate (True) or its sender gave up before (False)."""
        self._arrived.wait()
        return self._write_end is not None and not self._released.is_set()

    def let_through(self) -> bool:
        """Write the "." now, in this thread; False if that failed (the sender thread raises the
        error once released)."""
        if self._released.is_set() or self._write_end is None or self._passed:
            return False
        try:
            self._write_end()
            self._passed = True
        except Exception as error:  # noqa: BLE001 - the sender thread raises it
            self._error = error
        return self._passed

    def release(self) -> None:
        self._released.set()


def envelope_address(address: str, encoding: str) -> str:
    """The address as Django's SMTP backend hands it to the server (sanitize_address), without
    parsing a plain ASCII address, which it returns as it is: that parse costs a tenth of
    sending a digest."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address
    return _sanitized(address, encoding)


@functools.lru_cache(maxsize=64)  # the sender's own address, mostly
def _sanitized(address: str, encoding: str) -> str:
    return sanitize_address(address, encoding)


def send_gated(backend: EmailBackend, message: EmailMessage, gate: Gate) -> None:
    """Send `message` as backend.send_messages([message]) would, with the end of its DATA held
    at `gate`: Withheld if it is not let through, and the connection is closed then."""
    try:
        if backend.connection is None:
            backend.open()  # kept open after the message, as its sender expects
        smtp = backend.connection
        # The "." goes alone, after the rest: Nagle's algorithm would hold it back until the
        # server acknowledges the rest, which it delays (by 40 ms on Linux) in the hope of a reply
        # to carry it.
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send = smtp.send

        def gated(data) -> None:
            # smtplib writes commands as str and the DATA as bytes, its final "." included.
            if not (isinstance(data, bytes) and data.endswith(_END_OF_DATA)):
                send(data)
                return
            send(data[:-3])
            try:
                gate.arrive(lambda: send(data[-3:]))
            except Withheld:
                smtp.close()
                raise

        encoding = message.encoding or settings.DEFAULT_CHARSET
        sender = envelope_address(message.from_email, encoding)
        recipients = [envelope_address(address, encoding) for address in message.recipients()]
        smtp.send = gated
        try:
            smtp.sendmail(sender, recipients, wire_bytes(message))
        finally:
            del smtp.send
    finally:
        gate.leave()
