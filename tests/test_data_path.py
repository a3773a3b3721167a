"""The message's own way through the relay's edges: the DATA reader (pieces, one join, dots
undone once) and the upstream DATA writer (pieces, dots doubled, line endings), each checked
over real sockets against the line-by-line rules of RFC 5321 that aiosmtpd and aiosmtplib
implement."""

from __future__ import annotations

import asyncio
import random
import re

import pytest
from aiosmtplib.protocol import PERIOD_REGEX

from proxy.outbound.upstream import data_chunks
from proxy.relay.smtp import DataFacts, read_data


def reference_unstuff(payload: bytes) -> bytes:
    """aiosmtpd's reading: lines end at CRLF; the first ".\\r\\n" line ends the data; one
    leading dot is dropped from every other line."""
    lines = re.findall(rb".*?\r\n", payload, re.S)
    out = []
    for line in lines:
        if line == b".\r\n":
            break
        out.append(line[1:] if line.startswith(b".") else line)
    return b"".join(out)


def reference_stuff(raw: bytes) -> bytes:
    """aiosmtplib's writing: line endings made CRLF, leading dots doubled, final CRLF and dot."""
    raw = re.sub(rb"\r\n|\r|\n", b"\r\n", raw)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return PERIOD_REGEX.sub(b"..", raw) + b".\r\n"


async def read_over_socket(
    payload: bytes, limit: int | None, piece: int, after: bytes = b"", facts: DataFacts | None = None
) -> tuple[bytes | None, bytes]:
    """Send payload (+ what a pipelining client sends next) in pieces of ``piece`` bytes over
    a real loopback connection; what read_data returned and what the stream still holds."""
    result: asyncio.Future[tuple[bytes | None, bytes]] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        reader._limit = 256 * 1024  # type: ignore[attr-defined]  # as RelaySMTP sets it for DATA
        data = await read_data(reader, limit, facts)
        rest = await reader.readexactly(len(after))
        result.set_result((data, rest))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    stream = payload + after
    for i in range(0, len(stream), piece):
        writer.write(stream[i : i + piece])
        await writer.drain()
    try:
        return await asyncio.wait_for(result, 10)
    finally:
        writer.close()
        server.close()


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 1000, 1 << 20])
async def test_reader_ends_at_the_lone_dot_and_undoes_transparency(piece: int) -> None:
    message = b"Subject: x\r\n\r\n..leading dot\r\nend.\r\n\r\nno end\n.\r\n...\r\nlast\r\n"
    payload = message + b".\r\n"
    data, rest = await read_over_socket(payload, None, piece, after=b"QUIT\r\n")
    assert data == reference_unstuff(payload)
    assert data == b"Subject: x\r\n\r\n.leading dot\r\nend.\r\n\r\nno end\n.\r\n..\r\nlast\r\n"
    assert rest == b"QUIT\r\n"  # the pipelined command after the data is left for aiosmtpd


async def test_reader_empty_message_and_leading_dot() -> None:
    assert (await read_over_socket(b".\r\n", None, 1))[0] == b""
    assert (await read_over_socket(b".a\r\n.\r\n", None, 2))[0] == b"a\r\n"


async def test_reader_matches_line_by_line_reading_on_random_input() -> None:
    rng = random.Random(17)
    alphabet = [b"a", b".", b"\r", b"\n", b"\r\n", b"\r\n.", b"..", b"x" * 50]
    for _ in range(150):
        body = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        payload = reference_stuff(body)
        data, _ = await read_over_socket(payload, None, rng.randint(1, 40))
        assert data == reference_unstuff(payload), body


async def test_reader_refuses_too_much_but_reads_to_the_end() -> None:
    payload = b"x" * 70 + b"\r\n"
    data, rest = await read_over_socket(payload * 500 + b".\r\n", 20_000, 4096, after=b"RSET\r\n")
    assert data is None and rest == b"RSET\r\n"
    data, _ = await read_over_socket(payload * 200 + b".\r\n", 20_000, 4096)
    assert data == payload * 200


async def test_reader_takes_a_large_message_in_large_pieces() -> None:
    body = (b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n") * 40_000
    data, _ = await read_over_socket(body + b".\r\n", None, 65536)
    assert data == body


def test_writer_matches_aiosmtplib_on_random_input() -> None:
    rng = random.Random(5)
    alphabet = [b"a", b".", b"\r", b"\n", b"\r\n", b"x" * 5, b"\r\n.", b".."]
    for _ in range(5_000):
        raw = b"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        pieces = list(data_chunks(raw, size=rng.randint(1, 8)))
        assert b"".join(bytes(p) for p in pieces) == reference_stuff(raw), raw


def test_writer_hands_on_clean_pieces_without_copying() -> None:
    raw = b"line of a clean message\r\n" * 50_000
    pieces = list(data_chunks(raw))
    assert len(pieces) > 4 and all(isinstance(p, memoryview) for p in pieces[:-1])
    assert pieces[-1] == b".\r\n"
    assert all(len(p) <= 256 * 1024 + 30 for p in pieces)


async def test_reader_and_writer_round_trip() -> None:
    raw = b"From: a@b.example\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n"
    payload = b"".join(bytes(p) for p in data_chunks(raw, size=4))
    data, _ = await read_over_socket(payload, None, 5)
    assert data == raw


class _Handler:
    async def handle_DATA(self, *args: object) -> str:
        return "250 OK"

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        return responses


async def test_second_connection_gets_the_first_ones_introspection() -> None:
    import inspect

    import aiosmtpd.smtp as aiosmtpd_smtp
    from aiosmtpd.smtp import SMTP

    from proxy.relay.reuse import IntrospectOnce

    class Reusing(IntrospectOnce, SMTP):
        pass

    handler = _Handler()
    plain = SMTP(handler, hostname="relay.test")
    first, second = Reusing(handler, hostname="relay.test"), Reusing(handler, hostname="relay.test")
    for server in (first, second):
        assert sorted(server._smtp_methods) == sorted(plain._smtp_methods)
        assert all(m.__self__ is server for m in server._smtp_methods.values())  # never the first object's
        assert sorted(server._auth_methods) == sorted(plain._auth_methods)
        assert set(server._handle_hooks) == {"DATA", "EHLO"} and server._ehlo_hook_ver == "new"
    assert aiosmtpd_smtp.inspect is inspect and "dir" not in vars(aiosmtpd_smtp)
    for arg in [
        "<anna@nordlicht.example>",
        "anna@nordlicht.example SIZE=5",
        "<broken",
        "",
        '<"a b"@x.example> BODY=8BITMIME',
        "<" + "l" * 70 + "@x.example>",
        "<a@b.example>  \x0cSIZE=5",
        "<a@b.example> (comment) SIZE=5",
        "<a..b@x.example>",
        "<a@b.example>>",
        "<.a@x.example>",
        "<a@x.example.>",
        "<a@[127.0.0.1]>",
        "<@route.example:a@x.example>",
        "<änna@x.example>",
    ]:
        assert second._getaddr(arg) == plain._getaddr(arg), arg
    # The quick reading of <local@domain> must answer as the email package's parser does.
    rng = random.Random(17)
    alphabet = "ab.@<>( )\t\x0c\"[]:,;\\-+_=~!#$%&'*/?^`{|}äZ09"

    def answer(server: SMTP, arg: str) -> object:
        try:
            return server._getaddr(arg)
        except Exception as exc:  # the parser's own failures on some input (e.g. a lone "<")
            return type(exc)

    for _ in range(5_000):
        arg = "<" + "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        if rng.random() < 0.5:
            arg = f"<{rng.choice(['a', 'a.b', 'x-y'])}@{rng.choice(['b', 'b.c', 'x.y.z'])}>" + arg[1:]
        assert answer(second, arg) == answer(plain, arg), repr(arg)


@pytest.mark.parametrize(
    ("body", "clean"),
    [
        (b"a\r\nb\r\n", True),
        (b"a\nb\r\n", False),  # bare LF: the line-ending step must normalise it
        (b"a\rb\r\n", False),
        (b"a\x00b\r\n", False),  # NUL: the line-ending step must refuse it
        (b"x" * 300_000 + b"\r\n" + b"y\r\n" * 1000, True),  # pieces that end mid-line
    ],
)
async def test_reader_tells_whether_the_lines_are_clean(body: bytes, clean: bool) -> None:
    facts = DataFacts()
    payload = body.replace(b"\r\n.", b"\r\n..") + b".\r\n"  # stuffed, bare line ends kept as sent
    data, _ = await read_over_socket(payload, None, 4096, facts=facts)
    assert data == body and facts.clean_lines is clean
