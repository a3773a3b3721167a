"""A real SMTP server for tests: records what it receives, and can be told to misbehave."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.ports import free_port as _free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)


@dataclass
class Behaviour:
    """What the server answers.  Codes are full reply lines, e.g. '451 4.3.0 try later'."""

    mail_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> reply
    data_reply: str | None = None
    drop_at_data: bool = False


class RecordingHandler:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.behaviour = Behaviour()
        self.connections = 0
        self.lock = threading.Lock()

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]):
        if self.behaviour.mail_reply:
            return self.behaviour.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]):
        reply = self.behaviour.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope):
        if self.behaviour.drop_at_data:
            assert server.transport is not None
            server.transport.abort()
            await asyncio.sleep(0)
            return "421 dropped"
        if self.behaviour.data_reply:
            return self.behaviour.data_reply
        with self.lock:
            self.received.append(
                Received(
                    envelope.mail_from or "",
                    list(envelope.rcpt_tos),
                    envelope.original_content or b"",
                    list(envelope.mail_options),
                )
            )
        return "250 2.0.0 Queued as TEST"


class RecordingServer:
    """Runs on 127.0.0.1 with an ephemeral port in its own thread (aiosmtpd Controller)."""

    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=_free_port())

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    @property
    def behaviour(self) -> Behaviour:
        return self.handler.behaviour

    def start(self) -> RecordingServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller._thread is not None:
            self.controller.stop()
