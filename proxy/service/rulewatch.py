"""Hot reload of the rule files: a saved edit takes effect within about a second.

Polling a handful of small files is cheap and needs no inotify library.  A rule set that
does not validate never replaces the running one (``RuleHolder.reload`` keeps it and
records the errors for ``gdpr-proxy status``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from proxy.rules.ruleset import RuleHolder

log = logging.getLogger("gdpr_proxy.rulewatch")

# path -> (mtime_ns, size, inode); None when the file is missing or unreadable
Snapshot = dict[str, tuple[int, int, int] | None]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    # The inode catches editors that save by renaming a new file over the old one.
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def snapshot(holder: RuleHolder) -> Snapshot:
    """The files the rules come from, plus every YAML file in the user's rule directory."""
    paths = set(holder.watched_files())
    if holder.user_dir is not None:
        try:
            with os.scandir(holder.user_dir) as entries:
                paths.update(Path(e.path) for e in entries if e.name.endswith((".yaml", ".yml")))
        except OSError:
            pass  # no user rule directory (yet): only the shipped files count
    return {str(p): _stat(p) for p in sorted(paths)}


async def watch_rules(
    holder: RuleHolder,
    stop: asyncio.Event,
    interval: float = 1.0,
    on_reload: Callable[[bool], object] | None = None,
    initial: Snapshot | None = None,
) -> None:
    """Reload ``holder`` whenever a rule file changes, until ``stop`` is set.

    ``on_reload(ok)`` is called after each reload (the service uses it to tell systemd).
    ``initial`` is the state the holder's rules were read in (see ``start_watching``).
    """
    seen = snapshot(holder) if initial is None else initial
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except TimeoutError:
            pass
        current = snapshot(holder)
        if current == seen:
            continue
        # An editor may still be writing: wait for the files to settle before reading them.
        await asyncio.sleep(min(0.2, interval))
        settled = snapshot(holder)
        if settled != current:
            continue  # still changing: look again at the next poll
        # A shipped file that a new user copy replaces is not itself "changed".
        gone = [p for p in seen.keys() - settled.keys() if not Path(p).exists()]
        changed = sorted([p for p in settled if settled[p] != seen.get(p)] + gone)
        log.info("rule file(s) changed: %s", ", ".join(changed))
        # Parsing takes a noticeable fraction of a second: keep the relay answering meanwhile.
        # The holder swaps in the new set with one assignment, so messages see old or new.
        ok = await asyncio.to_thread(holder.reload)
        # The set of files may differ now (a user copy appeared or went away); keep the
        # states read before the reload, so an edit made during it is still noticed.
        seen = {p: settled.get(p, state) for p, state in snapshot(holder).items()}
        if on_reload is not None:
            on_reload(ok)


def start_watching(
    holder: RuleHolder,
    stop: asyncio.Event,
    interval: float = 1.0,
    on_reload: Callable[[bool], object] | None = None,
) -> asyncio.Task[None]:
    """Start ``watch_rules`` as a task, with the files' state read now.

    A task only runs at the loop's next turn; reading the state here, before the service
    reports READY, means an edit saved right after start-up is not taken as the baseline.
    """
    initial = snapshot(holder)
    return asyncio.get_running_loop().create_task(watch_rules(holder, stop, interval, on_reload, initial))
