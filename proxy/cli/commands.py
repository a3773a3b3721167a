"""The `gdpr-proxy` command: argument parsing and output only; the work is done elsewhere.

Exit codes: 0 done, 1 a problem the user can fix (message on stderr), 2 wrong usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from proxy.cli import queue as cli_queue
from proxy.cli import rights as cli_rights
from proxy.cli import rules as cli_rules
from proxy.cli import service as cli_service
from proxy.cli import unsubscribe as cli_unsubscribe
from proxy.cli import watch as cli_watch
from proxy.cli.common import with_store
from proxy.config.secrets import SecretError
from proxy.config.settings import Config, ConfigError, default_config_path, insecure_permissions_warning, load_config
from proxy.config.startup import startup_problems
from proxy.outbound.notices import load_notice_rules
from proxy.rights import suppression_list as admin
from proxy.rules.ruleset import RuleHolder, RulesError, load_rules
from proxy.schema import SourceError
from proxy.service.app import serve
from proxy.service.logs import setup_logging
from proxy.store import Store, StoreError
from proxy.store.reasons import REASONS

Handler = Callable[[argparse.Namespace, Config], int]


def _config(args: argparse.Namespace) -> Config:
    path = Path(args.config) if args.config else None
    return load_config(path, explicit=path is not None)


def _ready_to_start(config: Config) -> None:
    """Every password is read before anything starts: a missing one is named now, not at the first message."""
    problems = startup_problems(config)
    if problems:
        raise ConfigError([SourceError(config.source, None, key, problem) for key, problem in problems])


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    _ready_to_start(config)
    setup_logging(config.log.level, args.log_format or config.log.format)
    warning = insecure_permissions_warning(config)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise admin.UserError(f"cannot listen on {config.listen.host}:{config.listen.port}: {reason}") from None
    return 0


def cmd_config_check(args: argparse.Namespace, config: Config) -> int:
    if args.file:
        config = load_config(Path(args.file), explicit=True)
    _ready_to_start(config)
    load_rules(config.user_rules_path)
    load_notice_rules(config.user_rules_path)
    print(f"{config.source}: OK")
    print(f"  listen {config.listen.host}:{config.listen.port}; store {config.store_display}")
    if config.capture_mode:
        print(f"  capture mode: messages are written to {config.capture_path}/new")
    else:
        assert config.upstream is not None
        print(f"  upstream {config.upstream.host}:{config.upstream.effective_port} ({config.upstream.security})")
    warning = insecure_permissions_warning(config)
    if warning:
        print(f"warning: {warning}")
    return 0


def cmd_suppress(args: argparse.Namespace, config: Config) -> int:
    policy = config.addresses.policy

    async def work(store: Store) -> int:
        if args.action == "add":
            kind, value = admin.parse_target(args.target, policy)
            is_new = await store.add_suppression(kind, value, args.reason, "cli", args.note)
            print(f"{value}: {'suppressed' if is_new else 'already suppressed'} ({kind})")
        elif args.action == "remove":
            kind, value = admin.parse_target(args.target, policy)
            removed = await store.remove_suppression(kind, value)
            if not removed:
                raise admin.UserError(f"{value} is not on the suppression list")
            print(f"{value}: removed from the suppression list")
        elif args.action == "list":
            entries = await store.list_suppressions()
            for s in entries:
                shown = "(erased address, kept as a keyed hash)" if s.kind == "hash" else s.value
                print(f"{s.date}  {s.kind:7}  {s.reason:11}  {shown}" + (f"  # {s.note}" if s.note else ""))
            print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}", file=sys.stderr)
        elif args.action == "import":
            rows = admin.read_suppression_csv(Path(args.file), policy)
            added = await admin.import_suppressions(store, rows)
            print(f"{args.file}: {len(rows)} row(s) read, {added} new suppression(s)")
        elif args.action == "export":
            sys.stdout.write(await admin.export_suppressions(store))
        return 0

    return asyncio.run(with_store(config, work))


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    rules = RuleHolder(config.user_rules_path).current

    async def work(store: Store) -> int:
        _refused, text = await admin.explain_address(store, rules, config, args.address)
        print(text)
        return 0

    return asyncio.run(with_store(config, work))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdpr-proxy",
        description="Local SMTP relay that adds GDPR disclosures, strips trackers and honours opt-outs.",
    )
    parser.add_argument(
        "-c",
        "--config",
        help=f"config file (default: {default_config_path()} if it exists, else built-in defaults)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the relay (capture mode until an upstream server is configured)")
    # -c after the command too (`serve -c FILE`), as users type it; SUPPRESS keeps one given before it.
    p.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file (as before the command)")
    p.add_argument("--log-format", choices=["text", "json"], help="log line format (default from config: text)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("config", help="configuration commands")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    pc = csub.add_parser("check", help="validate a config file and the rules, without starting anything")
    pc.add_argument("file", nargs="?", help="config file to check (default: the one --config names)")
    pc.set_defaults(func=cmd_config_check)

    p = sub.add_parser("suppress", help="manage the suppression (opt-out) list")
    ssub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("add", "never send to this address or domain"), ("remove", "allow it again")):
        pa = ssub.add_parser(action, help=text)
        pa.add_argument("target", help="someone@example.org, or example.org / @example.org for a whole domain")
        if action == "add":
            pa.add_argument("--reason", choices=REASONS, default="manual")
            pa.add_argument("--note", help="free text kept with the entry (no personal data beyond need)")
    ssub.add_parser("list", help="print the suppression list")
    pi = ssub.add_parser("import", help="import a CSV file with an 'address' column (optional: reason, note)")
    pi.add_argument("file")
    ssub.add_parser("export", help="write the suppression list as CSV to standard output")
    p.set_defaults(func=cmd_suppress)

    p = sub.add_parser("check", help="would mail to ADDRESS be refused, and why")
    p.add_argument("address")
    p.set_defaults(func=cmd_check)

    cli_watch.add_commands(sub)
    cli_queue.add_commands(sub)
    cli_rules.add_commands(sub)
    cli_service.add_commands(sub)
    cli_rights.add_commands(sub)
    cli_unsubscribe.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Any = args.func
    try:
        config = _config(args)
        return int(handler(args, config))
    except (ConfigError, RulesError) as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 1
    except (admin.UserError, StoreError, SecretError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
