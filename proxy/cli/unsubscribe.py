"""CLI: `gdpr-proxy unsubscribe-server`, the one-click unsubscribe endpoint on its own."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.service.unsubscribe import run_endpoint


def cmd_unsubscribe_server(args: argparse.Namespace, config: Config) -> int:
    if not config.unsubscribe.public_url:
        raise UserError(
            "unsubscribe.public_url is not set: messages carry no one-click link for this endpoint to answer "
            "(set it to the https address your reverse proxy forwards here)"
        )
    try:
        asyncio.run(run_endpoint(config))
    except OSError as exc:
        where = f"{config.unsubscribe.host}:{config.unsubscribe.port}"
        raise UserError(f"cannot listen on {where}: {exc.strerror}") from None
    return 0


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "unsubscribe-server",
        help="run the one-click unsubscribe endpoint (unsubscribe: in the config) for your reverse proxy",
    )
    p.set_defaults(func=cmd_unsubscribe_server)
