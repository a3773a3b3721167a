"""The upstream transaction written at once (MAIL, RCPT, DATA) to a server offering
PIPELINING: every reply read in order, however the server splits them into packets."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

import pytest

from proxy.config.settings import UpstreamConfig
from proxy.outbound.upstream import SmtpUpstream, _path


@dataclass
class Script:
    """How the server answers; ``split``: each reply in its own packet, a little apart."""

    mail: str = "250 2.1.0 Ok"
    rcpt: dict[str, str] = field(default_factory=dict)  # address -> reply (default 250)
    data: str = "354 End data with <CR><LF>.<CR><LF>"
    final: str = "250 2.0.0 Ok: queued"
    split: bool = False
    close_after_mail: bool = False
    pipelining: bool = True


class Server:
    def __init__(self, script: Script):
        self.script = script
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.commands: list[str] = []
        self.reads_with_commands: list[int] = []  # commands per read from the socket, MAIL to DATA
        self.connections = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.session, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        self.server.close()
        await self.server.wait_closed()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        s = self.script
        pending: list[str] = []

        async def answer(line: str) -> None:
            pending.append(line + "\r\n")
            if s.split:
                writer.write(pending.pop().encode())
                await writer.drain()
                await asyncio.sleep(0.01)

        async def flush() -> None:
            if pending:
                writer.write("".join(pending).encode())
                pending.clear()
                await writer.drain()

        writer.write(b"220 test ESMTP\r\n")
        mail_from, rcpts = "", list[str]()
        buffered = b""
        try:
            while True:
                if b"\r\n" not in buffered:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    buffered += chunk
                    self.reads_with_commands.append(len(re.findall(rb"^(MAIL|RCPT|DATA)", buffered, re.M)))
                line, buffered = buffered.split(b"\r\n", 1)
                command = line.decode()
                self.commands.append(command.split(":")[0].split(" ")[0].upper())
                verb = command[:4].upper()
                if verb == "EHLO":
                    extensions = ["250-test", "250-SIZE 100000000", "250-8BITMIME"]
                    extensions += ["250-PIPELINING"] if s.pipelining else []
                    writer.write(("\r\n".join([*extensions, "250 SMTPUTF8"]) + "\r\n").encode())
                elif verb == "MAIL":
                    mail_from, rcpts = command[10:].split(">")[0].strip("<"), []
                    await answer(s.mail)
                    if s.close_after_mail:
                        await flush()
                        writer.close()
                        return
                elif verb == "RCPT":
                    address = command[8:].strip("<>")
                    reply = s.rcpt.get(address, "250 2.1.5 Ok")
                    if reply.startswith("250") and s.mail.startswith("250"):
                        rcpts.append(address)
                    await answer(reply)
                elif verb == "DATA":
                    if not rcpts:
                        await answer("554 5.5.1 Error: no valid recipients")
                        await flush()
                        continue
                    await answer(s.data)
                    await flush()
                    if not s.data.startswith("354"):
                        continue
                    while b"\r\n.\r\n" not in b"\r\n" + buffered:
                        chunk = await reader.read(65536)
                        if not chunk:
                            return
                        buffered += chunk
                    body, buffered = (b"\r\n" + buffered).split(b"\r\n.\r\n", 1)
                    unstuffed = re.sub(rb"\r\n\.", b"\r\n", body)  # transparency dots (RFC 5321 4.5.2)
                    self.messages.append((mail_from, rcpts, unstuffed[2:] + b"\r\n"))
                    await answer(s.final)
                elif verb == "RSET":
                    rcpts = []
                    await answer("250 2.0.0 Ok")
                elif verb == "QUIT":
                    await answer("221 2.0.0 Bye")
                    await flush()
                    return
                else:
                    await answer("502 5.5.2 Error: command not recognized")
                if not s.split and b"\r\n" not in buffered:
                    await flush()
        finally:
            writer.close()


MESSAGE = b"Subject: hi\r\n\r\n.a line with a dot\r\nbody\r\n"


async def deliver(script: Script, rcpts: list[str], times: int = 1) -> tuple[Server, list, SmtpUpstream]:
    server = Server(script)
    port = await server.start()
    upstream = SmtpUpstream(UpstreamConfig(host="127.0.0.1", port=port, security="none", timeout_seconds=5))
    results = []
    try:
        for _ in range(times):
            results.append(await upstream.deliver("anna@nordlicht.example", rcpts, MESSAGE, False))
    finally:
        await upstream.close()
        await server.stop()
    return server, results, upstream


@pytest.mark.parametrize("split", [False, True])
async def test_mail_rcpt_and_data_go_in_one_write_and_every_reply_is_read(split):
    server, results, _ = await deliver(Script(split=split), ["a@x.example", "b@y.example"], times=3)
    assert all(r.accepted == ["a@x.example", "b@y.example"] and not r.refused for r in results)
    assert server.messages == [("anna@nordlicht.example", ["a@x.example", "b@y.example"], MESSAGE)] * 3
    assert server.connections == 1  # the connection stays in step with the server: reused
    assert 4 in server.reads_with_commands  # MAIL, two RCPT and DATA arrived together


@pytest.mark.parametrize("split", [False, True])
async def test_a_refused_recipient_is_left_out_the_others_get_it(split):
    script = Script(rcpt={"b@y.example": "550 5.1.1 No such user"}, split=split)
    server, [result], _ = await deliver(script, ["a@x.example", "b@y.example"])
    assert result.accepted == ["a@x.example"]
    assert result.refused == {"b@y.example": (550, "5.1.1 No such user")}
    assert server.messages == [("anna@nordlicht.example", ["a@x.example"], MESSAGE)]


@pytest.mark.parametrize("split", [False, True])
async def test_nobody_accepted_sends_nothing_and_the_connection_is_reset_for_the_next(split):
    script = Script(rcpt={"a@x.example": "450 4.2.0 Busy"}, split=split)
    server, results, _ = await deliver(script, ["a@x.example"], times=2)
    assert [r.refused for r in results] == [{"a@x.example": (450, "4.2.0 Busy")}] * 2
    assert server.messages == []
    assert server.commands.count("RSET") == 2 and server.connections == 1


async def test_a_refused_sender_refuses_every_recipient():
    script = Script(mail="553 5.7.1 Sender not allowed")
    server, [result], _ = await deliver(script, ["a@x.example", "b@y.example"])
    assert result.accepted == []
    assert result.refused == {r: (553, "5.7.1 Sender not allowed") for r in ("a@x.example", "b@y.example")}
    assert server.messages == []


@pytest.mark.parametrize("split", [False, True])
async def test_message_refused_after_data_refuses_the_accepted(split):
    script = Script(final="451 4.3.0 Try again later", split=split)
    server, results, _ = await deliver(script, ["a@x.example"], times=2)
    assert [r.refused for r in results] == [{"a@x.example": (451, "4.3.0 Try again later")}] * 2
    assert server.connections == 1


async def test_data_refused_refuses_the_accepted():
    script = Script(data="452 4.3.1 Insufficient storage")
    _, [result], _ = await deliver(script, ["a@x.example"])
    assert result.refused == {"a@x.example": (452, "4.3.1 Insufficient storage")}


async def test_a_server_closing_with_421_refuses_every_recipient_for_later():
    script = Script(mail="421 4.3.2 Shutting down", close_after_mail=True)
    _, [result], _ = await deliver(script, ["a@x.example", "b@y.example"])
    assert result.accepted == []
    assert result.refused == {r: (421, "4.3.2 Shutting down") for r in ("a@x.example", "b@y.example")}


async def test_a_pooled_connection_the_server_closed_is_replaced():
    server = Server(Script())
    port = await server.start()
    upstream = SmtpUpstream(UpstreamConfig(host="127.0.0.1", port=port, security="none", timeout_seconds=5))
    try:
        first = await upstream.deliver("anna@nordlicht.example", ["a@x.example"], MESSAGE, False)
        for writer in server.writers:
            writer.close()  # the server drops the idle connection
        await asyncio.sleep(0.05)
        second = await upstream.deliver("anna@nordlicht.example", ["a@x.example"], MESSAGE, False)
    finally:
        await upstream.close()
        await server.stop()
    assert first.accepted == second.accepted == ["a@x.example"]
    assert len(server.messages) == 2 and server.connections == 2


async def test_without_pipelining_one_command_at_a_time():
    server, [result], _ = await deliver(Script(pipelining=False), ["a@x.example", "b@y.example"])
    assert result.accepted == ["a@x.example", "b@y.example"]
    assert max(server.reads_with_commands) == 1


@pytest.mark.parametrize(
    "address", ["a@x.example", "a.b+c@x-y.example", "", "Anna <a@x.example>", " a@x.example ", "a..b@x", '"a b"@x']
)
def test_addresses_are_written_as_aiosmtplib_writes_them(address):
    from aiosmtplib.email import quote_address

    assert _path(address) == quote_address(address)


async def test_an_address_that_cannot_be_written_is_refused_the_others_sent():
    bad = "b\x00@y.example"  # aiosmtplib refuses to write a control character
    server, [result], _ = await deliver(Script(), ["a@x.example", bad])
    assert result.accepted == ["a@x.example"]
    assert result.refused[bad][0] == 553
    assert "RSET" not in server.commands and len(server.messages) == 1


async def _at_once(count: int, **settings: object) -> tuple[Server, list, SmtpUpstream]:
    server = Server(Script(split=True))  # each reply takes a moment: the transactions overlap
    port = await server.start()
    config = UpstreamConfig(host="127.0.0.1", port=port, security="none", timeout_seconds=5, **settings)  # type: ignore[arg-type]
    upstream = SmtpUpstream(config)
    try:
        results = await asyncio.gather(
            *(upstream.deliver("anna@nordlicht.example", [f"k{i}@firma.de"], MESSAGE, False) for i in range(count))
        )
    finally:
        await upstream.close()
        await server.stop()
    return server, results, upstream


async def test_while_the_pooled_connections_are_busy_more_are_opened():
    server, results, _ = await _at_once(6, pool_size=1, max_connections=20)
    assert all(r.accepted and not r.refused for r in results)
    assert server.connections == 6  # pool_size is what is kept idle, not a limit on transactions


async def test_no_more_than_max_connections_at_once_and_every_message_gets_its_turn():
    server, results, upstream = await _at_once(7, pool_size=2, max_connections=2)
    assert all(r.accepted and not r.refused for r in results)
    assert len(server.messages) == 7
    assert server.connections == 2  # never a third one, though five messages waited at times
    assert upstream._busy == 0 and not upstream._turns


async def test_a_message_that_waits_too_long_for_a_turn_is_answered_for_later():
    server = Server(Script(split=True))
    port = await server.start()
    upstream = SmtpUpstream(UpstreamConfig(host="127.0.0.1", port=port, security="none", max_connections=1))
    try:
        first = asyncio.ensure_future(upstream.deliver("anna@nordlicht.example", ["a@firma.de"], MESSAGE, False))
        await asyncio.sleep(0)
        late = await upstream.deliver("anna@nordlicht.example", ["b@firma.de"], MESSAGE, False, connect_timeout=0.001)
        assert late.unreachable and late.refused["b@firma.de"][0] == 451
        assert (await first).accepted == ["a@firma.de"]
        assert upstream._busy == 0
    finally:
        await upstream.close()
        await server.stop()
