"""Per-connection work of aiosmtpd done once: its look over the server class and the handler.

aiosmtpd makes a new ``SMTP`` object for every connection (it is the connection's protocol),
and its constructor lists the handler's hooks, the server's commands and AUTH mechanisms
with ``dir``, ``inspect.getmembers`` and ``inspect.signature``: about 0.15 ms of CPU for each
connection of a desktop client, which opens one per message.  The answers depend only on the
server class and the handler, so the first connection's are kept and the next constructors
get them back; every value that is a bound method is still taken from the new object.
"""

from __future__ import annotations

import contextlib
import inspect
import re
import threading
from collections.abc import Callable, Iterator
from email._header_value_parser import get_addr_spec, get_angle_addr
from email.errors import HeaderParseError
from typing import Any

import aiosmtpd.smtp as aiosmtpd_smtp

_Names = dict[type, list[str]]  # class -> the names dir() listed for an instance of it
# Relays in test processes may build servers in several threads at once: one at a time.
_PATCHING = threading.Lock()
_NAMES: _Names = {}
_MEMBERS: _Names = {}
_SIGNATURES: dict[Any, inspect.Signature] = {}

# The address of nearly every MAIL and RCPT: <dot-atom@dot-atom> in ASCII, then parameters
# after spaces.  The email package's parser gives the same answer for it (the test compares
# them on random input); anything else (quotes, comments, literals, UTF-8) still goes there.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE = re.compile(rf"<({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)>")


class _Recorder:
    """Stands in for aiosmtpd's ``inspect`` and ``dir`` during one constructor call: answers
    from what the first call recorded, recording it on the way."""

    def __init__(self, names: _Names, members: _Names, signatures: dict[Any, inspect.Signature]):
        self.names, self.members, self.signatures = names, members, signatures

    def dir(self, obj: Any = None) -> list[str]:
        key = type(obj)
        found = self.names.get(key)
        if found is None:
            found = self.names[key] = dir(obj)
        return list(found)

    def getmembers(self, obj: Any, predicate: Callable[[Any], bool] | None = None) -> list[tuple[str, Any]]:
        if predicate is not None:
            return inspect.getmembers(obj, predicate)
        # aiosmtpd reads only the AUTH mechanisms (auth_*) of what getmembers returns; the
        # test of this module checks that the server's mechanisms come out the same.
        key = type(obj)
        found = self.members.get(key)
        if found is None:
            found = self.members[key] = [name for name, _ in inspect.getmembers(obj) if name.startswith("auth_")]
        return [(name, getattr(obj, name)) for name in found]

    def signature(self, func: Any) -> inspect.Signature:
        key = getattr(func, "__func__", func)
        found = self.signatures.get(key)
        if found is None:
            found = self.signatures[key] = inspect.signature(func)
        return found

    def __getattr__(self, name: str) -> Any:  # everything else of the inspect module
        return getattr(inspect, name)


class IntrospectOnce:
    """Mixin for an aiosmtpd ``SMTP`` subclass (put it first): see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with _answered_from(_Recorder(_NAMES, _MEMBERS, _SIGNATURES)):
            super().__init__(*args, **kwargs)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's address parsing, without the class it defines on every call (a typing
        Protocol, whose creation is the dearest part of a MAIL or RCPT command)."""
        if not arg:
            return "", ""
        plain = _PLAIN_ANGLE.match(arg)
        rest = arg[plain.end() :] if plain else ""
        if rest[:1] in (" ", "\t"):
            rest = rest.lstrip()  # as the parser takes white space after the address
        if plain is not None and not rest.startswith("("):  # (a comment: the parser's)
            addr = plain.group(1)
        else:
            parsed = self._parsed(arg)
            if parsed is None:
                return None, None
            addr, rest = parsed
        localpart, _, _ = addr.rpartition("@")
        limit = getattr(self, "local_part_limit", 0)
        if limit and len(localpart) > limit:
            return None, None
        return addr, rest

    @staticmethod
    def _parsed(arg: str) -> tuple[str, str] | None:
        address: Any
        try:
            if arg.lstrip().startswith("<"):
                address, rest = get_angle_addr(arg)
            else:
                address, rest = get_addr_spec(arg)
        except HeaderParseError:
            return None
        return str(address.addr_spec), str(rest)


@contextlib.contextmanager
def _answered_from(recorder: _Recorder) -> Iterator[None]:
    # The constructor is synchronous: nothing else on the event loop runs while the module's
    # names point at the recorder.
    module: Any = aiosmtpd_smtp
    with _PATCHING:
        yield from _patched(module, recorder)


def _patched(module: Any, recorder: _Recorder) -> Iterator[None]:
    had_dir = "dir" in vars(module)
    saved_dir = vars(module).get("dir")
    saved_inspect = module.inspect
    module.inspect = recorder
    module.dir = recorder.dir
    try:
        yield
    finally:
        module.inspect = saved_inspect
        if had_dir:
            module.dir = saved_dir
        else:
            del module.dir
