"""The two Python baselines, each run as its own process like the relay:

    python -m bench.servers bare  --port P                 # do-nothing aiosmtpd handler
    python -m bench.servers naive --port P --upstream U    # aiosmtpd + aiosmtplib, new connection per message

``bare`` is the Python floor (aiosmtpd parsing SMTP and answering 250).  ``naive`` is what a
user would write in an afternoon: forward each message with ``aiosmtplib.send`` and pass on
the upstream's answer.  Both use the same server setup as the relay (asyncio server created
in the main thread's loop, decode_data=False, 50 MiB size limit).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

MAX_BYTES = 50 * 1024 * 1024


class BareHandler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK"


class NaiveRelayHandler:
    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        try:
            await aiosmtplib.send(
                envelope.original_content or b"",
                sender=envelope.mail_from,
                recipients=envelope.rcpt_tos,
                hostname=self.host,
                port=self.port,
                timeout=60,
            )
        except aiosmtplib.SMTPResponseException as exc:
            return f"{exc.code} {exc.message}"
        except (aiosmtplib.SMTPException, OSError) as exc:
            return f"451 4.4.1 upstream: {exc}"
        return "250 2.0.0 OK relayed"


async def serve(handler: Any, port: int) -> None:
    loop = asyncio.get_running_loop()

    def factory() -> SMTP:
        return SMTP(handler, data_size_limit=MAX_BYTES, enable_SMTPUTF8=True, decode_data=False, hostname="bench")

    server = await loop.create_server(factory, host="127.0.0.1", port=port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["bare", "naive"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=int, help="port of the upstream SMTP server on 127.0.0.1 (naive)")
    args = parser.parse_args()
    if args.kind == "naive":
        if not args.upstream:
            parser.error("naive needs --upstream PORT")
        handler: Any = NaiveRelayHandler("127.0.0.1", args.upstream)
    else:
        handler = BareHandler()
    asyncio.run(serve(handler, args.port))


if __name__ == "__main__":
    main()
