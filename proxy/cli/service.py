"""Commands for running the relay as a service: install-service, status, reload."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from proxy.config.settings import APP, Config
from proxy.errors import UserError
from proxy.service import control
from proxy.service.install import Scope, install, plan_unit

# Where the system service (StateDirectory=) keeps its control socket.
SYSTEM_SOCKET = Path("/var/lib") / APP / control.SOCKET_NAME


def cmd_install_service(args: argparse.Namespace, config: Config) -> int:
    scope: Scope = "system" if args.system else "user"
    config_path = Path(args.service_config) if args.service_config else None
    if config_path is None and scope == "user" and not config.source.startswith("("):
        config_path = Path(config.source)  # the file named with the global --config
    plan = plan_unit(scope, config_path)
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        print(f"# {plan.path} (not written: --dry-run)")
        sys.stdout.write(plan.text)
        return 0
    install(plan)
    print(f"wrote {plan.path}")
    print(f"  program {plan.executable}; config {plan.config}")
    print("next:")
    print(f"  {plan.next_command}")
    return 0


def _socket_for(args: argparse.Namespace, config: Config) -> Path:
    if args.socket:
        return Path(args.socket)
    own = control.socket_path(config.data_path)
    # The system service keeps its socket in /var/lib; root asking finds it there.
    if not own.exists() and SYSTEM_SOCKET.exists():
        return SYSTEM_SOCKET
    return own


def _ask(args: argparse.Namespace, config: Config, command: str) -> dict[str, Any]:
    try:
        return asyncio.run(control.query(_socket_for(args, config), command))
    except control.ControlError as exc:
        raise UserError(str(exc)) from None


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    status = _ask(args, config, "status")
    print(format_status(status))
    return 0  # running; rule errors are shown, and the service keeps working rules


def cmd_reload(args: argparse.Namespace, config: Config) -> int:
    result = _ask(args, config, "reload")
    errors = result.get("rule_errors") or []
    if errors:
        print("rules not reloaded, the service keeps the running rules:", file=sys.stderr)
        for error in errors:
            print(f"  {_rule_error(error)}", file=sys.stderr)
        return 1
    print("rules reloaded")
    return 0


def _rule_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    where = f"{error.get('file')}:{error.get('line')}" if error.get("line") else str(error.get("file"))
    return f"{where}: {error.get('key') or '(top level)'}: {error.get('message', '')}"


def _yes_no(value: Any) -> str:
    return "unknown" if value is None else "yes" if value else "NO"


def format_status(status: dict[str, Any]) -> str:
    """The service's status answer as the lines `gdpr-proxy status` prints."""
    lines = [f"gdpr-mail-proxy running (pid {status.get('pid', '?')})"]
    lines.append(f"  up since:  {status.get('up_since', '?')}")
    if status.get("listen"):
        lines.append(f"  listening: {status['listen']}")
    upstream = status.get("upstream") or {}
    if status.get("capture_mode"):
        lines.append(f"  upstream:  none, CAPTURE MODE ({upstream.get('description', 'messages are kept locally')})")
    else:
        text = f"  upstream:  {upstream.get('description', '?')}, reachable: {_yes_no(upstream.get('reachable'))}"
        if upstream.get("error"):
            text += f" ({upstream['error']})"
        lines.append(text)
    watcher = status.get("watcher")
    if watcher:
        text = f"  watcher:   {watcher.get('state', '?')}, last check {watcher.get('last_check') or 'never'}"
        if "messages_handled" in watcher:
            text += f", {watcher['messages_handled']} message(s) read since start"
        if watcher.get("error"):
            text += f" (last error: {watcher['error']})"
        lines.append(text)
        if unreadable := (watcher.get("unreadable") or {}).get("count"):
            lines.append(f"  unreadable: {unreadable} reply(s) skipped, last {watcher['unreadable'].get('last')}")
    else:
        lines.append("  watcher:   not configured")
    today = status.get("today") or {}
    lines.append(
        f"  today ({today.get('day', '?')}): {today.get('relayed', 0)} relayed, "
        f"{today.get('refused', 0)} refused, {today.get('modified', 0)} modified"
    )
    refused = today.get("refused_recipients") or {}
    if refused:
        lines.append("  recipients refused today: " + ", ".join(f"{c} {n}" for c, n in sorted(refused.items())))
    unrecorded = today.get("unrecorded") or {}
    if unrecorded:
        lines.append(
            "  first contacts without a recorded "
            + ", ".join(f"{what} today: {n}" for what, n in sorted(unrecorded.items()))
            + " (record them: gdpr-proxy contacts import FILE.csv, columns source and reason)"
        )
    store = status.get("store")
    if store:
        text = f"  store:     {store.get('where', '?')}, reachable: {_yes_no(store.get('reachable'))}"
        lines.append(text + (f" ({store['error']})" if store.get("error") else ""))
    suppressed = today.get("suppressed") or {}
    if suppressed:
        by_reason = ", ".join(f"{reason} {count}" for reason, count in sorted(suppressed.items()))
        lines.append(f"  suppressions added today: {by_reason}")
    else:
        lines.append("  suppressions added today: none")
    bounces = status.get("bounces") or {}
    if bounces.get("suspended"):
        lines.append(
            f"  suspended: {bounces['suspended']} address(es) after repeated temporary failures (lift by themselves)"
        )
    for warning in bounces.get("sender_side") or []:
        lines.append(
            f"  YOUR SET-UP: {warning['count']} message(s) refused for {warning['reason'].upper()} "
            f"(last {warning['last']}, at {warning['domain'] or '?'}): {warning['evidence']}"
        )
    if "queue" in status:
        lines.append(f"  queue:     {status['queue']} message(s) waiting (gdpr-proxy queue)")
        for entry in status.get("queue_entries") or []:
            who = ", ".join(entry.get("recipients") or []) if entry.get("kind") == "message" else entry.get("kind")
            lines.append(f"    {entry.get('id')}  {who}; last error: {entry.get('last_error') or '-'}")
    errors = status.get("rule_errors") or []
    if errors:
        lines.append("  RULE ERRORS (the service keeps running with the previous rules):")
        lines.extend(f"    {_rule_error(e)}" for e in errors)
    else:
        lines.append("  rules:     loaded, no errors")
    return "\n".join(lines)


def add_commands(sub: Any) -> None:
    """Add install-service, status and reload to the `gdpr-proxy` sub-command parser."""
    p = sub.add_parser(
        "install-service",
        help="write a systemd unit for this installation (user service by default)",
        description="Write a systemd unit that runs this installation's gdpr-proxy, and print "
        "the command that starts it.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="a user service in ~/.config/systemd/user/ (the default)")
    where.add_argument("--system", action="store_true", help="a system service in /etc/systemd/system/ (needs root)")
    p.add_argument(
        "--config",
        dest="service_config",
        metavar="FILE",
        help="config file the service uses (default: ~/.config/gdpr-mail-proxy/config.yaml for --user, "
        "/etc/gdpr-mail-proxy/config.yaml for --system)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the unit instead of writing it")
    p.set_defaults(func=cmd_install_service)

    for name, text, func in (
        ("status", "show what the running relay is doing (exit 1 if it is not running)", cmd_status),
        ("reload", "make the running relay read its rule files again", cmd_reload),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--socket", metavar="PATH", help="control socket (default: DATA_DIR/control.sock)")
        p.set_defaults(func=func)
