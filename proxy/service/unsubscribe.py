"""The one-click unsubscribe endpoint (RFC 8058): a POST with a valid signed link suppresses, a GET only asks.

A small HTTP/1.1 server on asyncio streams, meant to sit behind the team's reverse proxy
(which terminates TLS).  Mail providers POST ``List-Unsubscribe=One-Click`` to the link in
the List-Unsubscribe header; a person who opens the link gets a page in their language with
a button that makes the same POST.  A GET never suppresses, because link scanners and
previews fetch every link they see.  Requests are read with limits and a deadline, and the
log names the recipient's domain only.
"""

from __future__ import annotations

import asyncio
import html
import logging
import signal
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from proxy.addresses import domain_of
from proxy.config.settings import Config
from proxy.relay.steps.unsubscribe import verify_token
from proxy.rules.answers import UnsubscribePage
from proxy.rules.footers import recipient_language
from proxy.rules.ruleset import RuleHolder
from proxy.store import Store, StoreError, open_store

log = logging.getLogger("gdpr_proxy.unsubscribe")

MAX_HEAD = 16 * 1024
MAX_BODY = 64 * 1024
READ_SECONDS = 10.0
ONE_CLICK = "List-Unsubscribe=One-Click"
_ENGLISH_PAGE = UnsubscribePage(
    title="Unsubscribe",
    question="Do you want to receive no more e-mail from {company} at {address}?",
    button="Unsubscribe",
    done="Done: {company} will not write to {address} again.",
    invalid="This unsubscribe link is not valid.",
)
_STATUS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           413: "Content Too Large", 503: "Service Unavailable"}  # fmt: skip


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class BadRequest(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


async def read_request(reader: asyncio.StreamReader) -> Request:
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_SECONDS)
    except asyncio.LimitOverrunError:
        raise BadRequest(413) from None
    except (asyncio.IncompleteReadError, TimeoutError):
        raise BadRequest(400) from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, colon, value = line.partition(":")
            if not colon:
                raise BadRequest(400)
            headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:  # chunked bodies are not needed by any mail provider
        raise BadRequest(400)
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadRequest(400) from None
    if length < 0 or length > MAX_BODY:
        raise BadRequest(413)
    body = b""
    if length:
        try:
            body = await asyncio.wait_for(reader.readexactly(length), READ_SECONDS)
        except (asyncio.IncompleteReadError, TimeoutError):
            raise BadRequest(400) from None
    return Request(parts[0].upper(), parts[1], headers, body)


def is_one_click(request: Request) -> bool:
    """RFC 8058: the body says List-Unsubscribe=One-Click, form-encoded or as multipart/form-data."""
    kind = request.headers.get("content-type", "").lower()
    text = request.body.decode("utf-8", "replace")
    if kind.startswith("multipart/form-data"):
        return 'name="list-unsubscribe"' in text.lower() and "One-Click" in text
    return parse_qs(text).get("List-Unsubscribe") == ["One-Click"]


def token_of(path: str) -> str:
    """The last segment of the path: the reverse proxy may keep a prefix such as /u/."""
    return unquote(urlsplit(path).path.rstrip("/").rpartition("/")[2])


class UnsubscribeEndpoint:
    def __init__(self, config: Config, store: Store, rules: RuleHolder):
        self.config = config
        self.store = store
        self.rules = rules
        self.server: asyncio.Server | None = None

    async def start(self, host: str | None = None, port: int | None = None) -> asyncio.Server:
        self.server = await asyncio.start_server(
            self._serve,
            host or self.config.unsubscribe.host,
            self.config.unsubscribe.port if port is None else port,
            limit=MAX_HEAD,
            reuse_address=True,
        )
        return self.server

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def serve_until(self, stopping: asyncio.Event) -> None:
        await stopping.wait()
        await self.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                request = await read_request(reader)
                status, page = await self.answer(request)
            except BadRequest as exc:
                status, page = exc.status, self._page(self._texts(None)[1], "invalid", "", None)
            writer.write(_response(status, page))
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client went away; nothing was half-done
        except Exception:
            log.exception("unsubscribe request failed")
        finally:
            writer.close()

    async def answer(self, request: Request) -> tuple[int, str]:
        if request.method not in ("GET", "POST"):
            return 405, ""
        key = await self.store.unsubscribe_key()
        address = verify_token(key, token_of(request.path))
        contact = None
        if address is not None:
            try:
                contact = await self.store.contact(address)
            except StoreError:
                contact = None
        code, texts = self._texts(address, contact)
        if address is None:
            log.info("unsubscribe link refused: not signed with this store's key")
            return (403 if request.method == "POST" else 404), self._page(texts, "invalid", "", code)
        if request.method == "GET":  # link scanners fetch links: asking is all a GET may do
            return 200, self._page(texts, "question", address, code, with_button=True)
        if not is_one_click(request):
            return 400, self._page(texts, "question", address, code, with_button=True)
        try:
            await self.suppress(address)
        except StoreError as exc:
            log.error("unsubscribe not recorded, the store is unavailable: %s", exc)
            return 503, self._page(texts, "invalid", address, code)
        return 200, self._page(texts, "done", address, code)

    async def suppress(self, address: str) -> None:
        if await self.store.find_suppression(address) is not None:
            return  # already blocked (an erased person stays a keyed hash, never an address again)
        added = await self.store.add_suppression("address", address, "unsubscribe", "one-click")
        if added:
            log.info("one-click unsubscribe: recipient at %s suppressed", domain_of(address))

    def _texts(self, address: str | None, contact: dict[str, object] | None = None) -> tuple[str, UnsubscribePage]:
        rules = self.rules.current
        default = self.config.sender.default_language
        language = recipient_language(rules.regions, contact, domain_of(address), default) if address else default
        code, page = rules.answers.page(language)
        return code, page or _ENGLISH_PAGE

    def _page(
        self, texts: UnsubscribePage, which: str, address: str, code: str | None, with_button: bool = False
    ) -> str:
        values = {"company": self.config.sender.company.strip() or "[sender.company]", "address": address}
        message = html.escape(getattr(texts, which).format(**values))
        button = (
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">{html.escape(texts.button)}</button></form>'
            if with_button
            else ""
        )
        lang = f' lang="{html.escape(code)}"' if code else ""
        return (
            f'<!doctype html>\n<html{lang}><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(texts.title)}</title></head>\n"
            '<body style="font-family:Arial,Helvetica,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;">'
            f"<h1>{html.escape(texts.title)}</h1><p>{message}</p>{button}</body></html>\n"
        )


def _response(status: int, page: str) -> bytes:
    body = page.encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {_STATUS.get(status, 'OK')}\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Referrer-Policy: no-referrer\r\n"
        "X-Robots-Tag: noindex\r\n"
        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; form-action 'self'\r\n"
        + ("Allow: GET, POST\r\n" if status == 405 else "")
        + "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def start_endpoint(config: Config, store: Store, rules: RuleHolder) -> UnsubscribeEndpoint:
    endpoint = UnsubscribeEndpoint(config, store, rules)
    await endpoint.start()
    return endpoint


async def run_endpoint(config: Config) -> None:
    """`gdpr-proxy unsubscribe-server`: the endpoint alone, on the configured store, until stopped."""
    store = await open_store(config)
    rules = RuleHolder(config.user_rules_path)
    endpoint = UnsubscribeEndpoint(config, store, rules)
    try:
        await endpoint.start()
        where = f"{config.unsubscribe.host}:{endpoint.port}"
        log.info("unsubscribe endpoint listening on %s (store %s)", where, config.store_display)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await endpoint.serve_until(stop)
    finally:
        await endpoint.close()
        await store.close()
