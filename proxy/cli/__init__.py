"""The `gdpr-proxy` command line: one module per command group, parsing and output only."""

from proxy.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
