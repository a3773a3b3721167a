"""What a running service holds: its parts, shared by start-up, status and shutdown."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from proxy.config.settings import Config
from proxy.outbound.spool import Spool
from proxy.outbound.upstream import Upstream
from proxy.relay.smtp import RelayHandler
from proxy.rules.ruleset import RuleHolder
from proxy.store import Store
from proxy.watcher.imap.follow import ImapWatcher


@dataclass
class Service:
    config: Config
    store: Store
    rules: RuleHolder
    upstream: Upstream
    spool: Spool
    handler: RelayHandler
    server: asyncio.base_events.Server | None = None
    started_at: float = field(default_factory=time.time)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: ImapWatcher | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])
