"""Handing a message to an SMTP server up to its last line, and that line only once the sender
lets it through.

An SMTP server takes a message at the "." that ends its DATA, and not before: when the connection
closes first (a worker killed, or a sender withholding the message) the server accepts nothing.
So sending.send_deliveries hands a message over while it writes the previous one's "sent" mark
and checks its claim on this one, and lets the "." go only once both are committed: the database
round trip overlaps the transfer, and no more than one message is ever accepted and not yet
marked sent.
"""

import socket
import threading

from django.core.mail.backends.smtp import EmailBackend
from django.core.mail.message import EmailMessage

_END_OF_DATA = b"\r\n.\r\n"


class Withheld(Exception):
    """The message was not let through: its connection was closed before the end of its DATA,
    so the server accepted nothing."""


class Gate:
    """One message's final ".": let through (open) or withheld (shut), once, by the thread that
    holds its claim; the sender thread waits for the decision."""

    def __init__(self) -> None:
        self._decided = threading.Event()
        self._passes = False

    def open(self) -> None:
        if not self._decided.is_set():
            self._passes = True
            self._decided.set()

    def shut(self) -> None:
        self._decided.set()

    def passes(self) -> bool:
        self._decided.wait()
        return self._passes


def send_gated(backend: EmailBackend, message: EmailMessage, gate: Gate) -> None:
    """backend.send_messages([message]) with the end of its DATA held at `gate`: Withheld if the
    gate is shut, and the connection is closed then."""
    if backend.connection is None:
        backend.open()  # kept open after the message, as its sender expects
    smtp = backend.connection
    # The "." goes alone, after the rest: Nagle's algorithm would hold it back until the server
    # acknowledges the rest, which it delays (by 40 ms on Linux) in the hope of a reply to carry it.
    smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    send = smtp.send

    def gated(data) -> None:
        # smtplib writes commands as str and the DATA as bytes, its final "." included.
        if isinstance(data, bytes) and data.endswith(_END_OF_DATA):
            send(data[:-3])
            if not gate.passes():
                smtp.close()
                raise Withheld("its claim was no longer ours")
            data = data[-3:]
        send(data)

    smtp.send = gated
    try:
        backend.send_messages([message])
    finally:
        del smtp.send
