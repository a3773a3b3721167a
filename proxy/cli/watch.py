"""CLI commands of the reply watcher: watch, classify, review.

The classifier and the watcher are imported inside the commands that use them, so `serve`
starts without them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from proxy.cli.common import read_message_file
from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.rules.ruleset import RuleHolder
from proxy.service.app import make_upstream
from proxy.service.logs import setup_logging
from proxy.store import open_store


def cmd_classify(args: argparse.Namespace, config: Config) -> int:
    from proxy.classify.classifier import classify

    rules = RuleHolder(config.user_rules_path).current
    raw = read_message_file(args.message)
    verdict = classify(raw, rules.reply_rules, rules.footer_fingerprints)
    print(json.dumps(verdict.as_json(), ensure_ascii=False, indent=2))
    return 0


def cmd_watch(args: argparse.Namespace, config: Config) -> int:
    if config.imap is None:
        raise UserError(f"no imap: section in {config.source}; see config.example.yaml")
    setup_logging(config.log.level, config.log.format)
    return asyncio.run(_watch(config, once=args.once))


async def _watch(config: Config, once: bool) -> int:
    from proxy.watcher.actions import make_watcher

    store = await open_store(config)
    upstream = make_upstream(config) if config.upstream is not None else None
    watcher, _ = make_watcher(config, store, RuleHolder(config.user_rules_path), upstream)
    try:
        if once:
            count = await watcher.run_once()
            print(f"{count} new message(s) handled")
        else:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await watcher.run(stop)
    finally:
        await watcher.close()
        if upstream is not None:
            await upstream.close()
        await store.close()
    return 0


def cmd_review(args: argparse.Namespace, config: Config) -> int:
    return asyncio.run(_review(config, args.action, args.id))


async def _review(config: Config, action: str | None, verdict_id: int | None) -> int:
    from proxy.rights.subject_rights import forget

    store = await open_store(config)
    try:
        if action is None:
            pending = await store.verdicts("pending")
            for v in pending:
                language = f" ({v['language']})" if v.get("language") else ""
                print(f"#{v['id']}  {v['created_at'][:10]}  {v['verdict']:9}  {v['address']}")
                reason, _, text = str(v["evidence"]).partition("\n")
                print(f"      {v['where_found']}{language}: {reason}")
                for line in text.splitlines()[:12]:
                    print(f"      | {line}")
            print(f"{len(pending)} repl{'y' if len(pending) == 1 else 'ies'} to review", file=sys.stderr)
            if pending:
                print("confirm (keep suppressed): gdpr-proxy review confirm ID; dismiss: gdpr-proxy review dismiss ID")
            return 0
        if verdict_id is None:
            raise UserError(f"review {action} needs the number of the entry (see gdpr-proxy review)")
        entry = await store.set_verdict_status(verdict_id, "confirmed" if action == "confirm" else "dismissed")
        if entry is None:
            raise UserError(f"no review entry #{verdict_id}")
        address = entry["address"]
        if action == "confirm" and entry["verdict"] == "erasure":
            report = await forget(store, address, source="review")
            print(f"#{verdict_id}: erased ({report.total} record(s) removed; the address stays blocked)")
        elif action == "confirm":
            await store.add_suppression("address", address, "opt-out", "review", entry["evidence"][:200])
            print(f"#{verdict_id}: {address} stays suppressed (opt-out confirmed)")
        else:
            await store.remove_suppression_if("address", address, "review")
            print(f"#{verdict_id}: dismissed; {address} may be written to again")
        return 0
    finally:
        await store.close()


def add_commands(sub: Any) -> None:
    p = sub.add_parser("classify", help="print the watcher's verdict on one message file, as JSON")
    p.add_argument("message", help="an .eml file (a reply, auto-reply or bounce)")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("watch", help="follow the mailbox in imap: and act on replies (also part of serve)")
    p.add_argument("--once", action="store_true", help="handle what is new, then exit")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("review", help="list uncertain replies, or confirm / dismiss one")
    p.add_argument("action", nargs="?", choices=["confirm", "dismiss"])
    p.add_argument("id", nargs="?", type=int)
    p.set_defaults(func=cmd_review)
