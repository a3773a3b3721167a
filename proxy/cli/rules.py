"""CLI commands about rules: preview, rules check, rules explain.

The preview and report modules are imported inside the commands that use them, so `serve` starts without them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from proxy.cli.common import read_message_file
from proxy.config.settings import Config
from proxy.errors import UserError
from proxy.rules.ruleset import SHIPPED_RULES, RuleHolder, rule_file_paths
from proxy.store import open_store


def cmd_preview(args: argparse.Namespace, config: Config) -> int:
    from proxy.relay.preview import preview_message

    rules = RuleHolder(config.user_rules_path).current
    raw = read_message_file(args.message)

    async def work() -> int:
        store = await open_store(config)
        try:
            mail_from = args.mail_from or config.sender.opt_out_address.strip()
            result = await preview_message(store, rules, config, raw, args.to, mail_from)
        except ValueError as exc:
            raise UserError(str(exc)) from None
        finally:
            await store.close()
        if result.refused:
            print(f"would be refused: {result.refused}", file=sys.stderr)
            return 0
        if not args.summary_only:
            sys.stdout.buffer.write(result.raw)
            sys.stdout.flush()
        print("\n".join(f"# {line}" for line in result.summary), file=sys.stderr)
        return 0

    return asyncio.run(work())


def cmd_rules_check(args: argparse.Namespace, config: Config) -> int:
    from proxy.rules.replies import reply_rules_report

    holder = RuleHolder(config.user_rules_path)  # raises RulesError with file, line and key
    for _name, path in sorted(rule_file_paths(SHIPPED_RULES, config.user_rules_path).items()):
        origin = "yours" if not str(path).startswith(str(SHIPPED_RULES)) else "shipped"
        print(f"{path}: OK ({origin})")
    for line in reply_rules_report(holder.current.replies, config.user_rules_path):
        print(line)
    del holder
    return 0


def cmd_rules_explain(args: argparse.Namespace, config: Config) -> int:
    from proxy.relay.preview import explain_recipient

    rules = RuleHolder(config.user_rules_path).current

    async def work() -> int:
        store = await open_store(config)
        try:
            print("\n".join(await explain_recipient(store, rules, config, args.address)))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        finally:
            await store.close()
        return 0

    return asyncio.run(work())


def add_commands(sub: Any) -> None:
    p = sub.add_parser("preview", help="print the exact message ADDRESS would receive, and what was done")
    p.add_argument("--to", required=True, help="the recipient to preview for")
    p.add_argument("--from", dest="mail_from", help="envelope sender (default: sender.opt_out_address)")
    p.add_argument("--summary-only", action="store_true", help="print only the summary")
    p.add_argument("message", help="an .eml file as your mail client would send it")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("rules", help="check the rule files, or explain the decisions for one address")
    rsub = p.add_subparsers(dest="rules_command", required=True, metavar="ACTION")
    rsub.add_parser("check", help="validate every rule file without starting").set_defaults(func=cmd_rules_check)
    pe = rsub.add_parser("explain", help="everything the relay would decide for ADDRESS, and why")
    pe.add_argument("address")
    pe.set_defaults(func=cmd_rules_explain)
