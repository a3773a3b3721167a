"""Connection slots per client address, so that nobody on the network can lock local users out.

Clients beyond loopback share ``max_connections`` slots, each address at most
``max_connections_per_client`` of them; loopback clients (the salesperson's own mail program
on this machine) have ``max_connections`` slots of their own that no remote client can take.
"""

from __future__ import annotations

import ipaddress
from collections import Counter


def is_loopback_peer(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


class ConnectionSlots:
    """Open client connections of one server, by client address."""

    def __init__(self, limit: int, per_client: int | None = None):
        self.limit = limit
        self.per_client = per_client or limit
        self.local = 0
        self.remote: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self.local + sum(self.remote.values())

    def admit(self, host: str) -> bool:
        """Take a slot for a client at ``host``; False when its share is used up."""
        if is_loopback_peer(host):
            if self.local >= self.limit:
                return False
            self.local += 1
            return True
        if sum(self.remote.values()) >= self.limit or self.remote[host] >= self.per_client:
            return False
        self.remote[host] += 1
        return True

    def leave(self, host: str) -> None:
        if is_loopback_peer(host):
            self.local -= 1
            return
        self.remote[host] -= 1
        if self.remote[host] <= 0:
            del self.remote[host]
