"""The queue's reserved slots: an ordinary message reserves its room without touching the disk."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from proxy.outbound import spool as spool_module
from proxy.outbound.spool import MAX_SLOTS, SLOT_BYTES, SLOT_ROOM, SLOT_SUFFIX, Spool, discard


def slots(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SLOT_SUFFIX}"))


def test_a_slot_given_back_unused_is_reused_without_new_files(tmp_path):
    spool = Spool(tmp_path / "queue")
    assert spool.reserve_pooled([5_000]) is None  # nothing in the pool yet
    reservation = spool.reserve([5_000])
    [slot] = slots(spool.directory)
    assert slot.stat().st_size == SLOT_BYTES  # the room is really allocated
    assert reservation.release() == []  # back into the pool, nothing to remove
    again = spool.reserve_pooled([4_000])
    assert again is not None
    held = again.take(4_000)
    assert held is not None and held.path == slot
    assert again.release() == []
    assert slots(spool.directory) == [slot]


def test_a_copy_that_waits_is_written_into_its_slot(tmp_path):
    spool = Spool(tmp_path / "queue")
    reservation = spool.reserve([100])
    held = reservation.take(100)
    assert held is not None
    entry = spool.put("a@x.example", ["b@y.example"], b"Subject: hi\r\n\r\nbody\r\n", None, reserved=held)
    assert spool.message(entry) == b"Subject: hi\r\n\r\nbody\r\n"
    assert slots(spool.directory) == []  # the slot became the copy's file
    assert held.fd is None  # its descriptor is closed
    assert [e.id for e in spool.entries()] == [entry.id]


def test_a_failed_write_into_a_slot_leaves_nothing(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "queue")
    held = spool.reserve([100]).take(100)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(spool_module.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        spool.put("a@x.example", ["b@y.example"], b"x", None, reserved=held)
    monkeypatch.undo()
    assert sorted(p.name for p in spool.directory.iterdir()) == []


def test_large_copies_get_their_own_file_removed_afterwards(tmp_path):
    spool = Spool(tmp_path / "queue")
    reservation = spool.reserve([SLOT_ROOM + 1, 10])
    assert len(list(spool.directory.glob("*.reserved"))) == 1
    leftovers = reservation.release()
    assert [p.room for p in leftovers] == [SLOT_ROOM + 1]
    discard(leftovers)
    assert list(spool.directory.glob("*.reserved")) == []
    assert len(slots(spool.directory)) == 1  # the small one stays in the pool
    assert spool.reserve_pooled([SLOT_ROOM + 1]) is None


def test_the_pool_keeps_at_most_max_slots(tmp_path):
    spool = Spool(tmp_path / "queue")
    reservations = [spool.reserve([10]) for _ in range(MAX_SLOTS + 3)]
    leftovers = [h for r in reservations for h in r.release()]
    assert len(leftovers) == 3
    discard(leftovers)
    assert len(slots(spool.directory)) == MAX_SLOTS


def test_a_queue_that_cannot_be_written_is_not_reserved_from_the_pool(tmp_path, monkeypatch):
    spool = Spool(tmp_path / "queue")
    spool.reserve([10]).release()
    monkeypatch.setattr(spool_module.os, "access", lambda *a, **k: False)
    assert spool.reserve_pooled([10]) is None  # reserve() in a thread then says why


def test_slots_of_a_relay_that_is_gone_are_removed_those_of_a_running_one_kept(tmp_path):
    queue = tmp_path / "queue"
    running = Spool(queue)
    running.reserve([10]).release()
    [live] = slots(queue)
    dead = queue / f"{'0' * 32}{SLOT_SUFFIX}"
    dead.write_bytes(b"\0" * 10)  # nobody holds its lock
    fresh = queue / f"{'1' * 32}{SLOT_SUFFIX}"
    fresh.write_bytes(b"")  # just made: its relay may not have locked it yet
    old = time.time() - 3600
    for path in (live, dead):
        os.utime(path, (old, old))
    Spool(queue)  # e.g. a relay starting, or `gdpr-proxy queue`
    assert slots(queue) == sorted([live, fresh])
    assert running.reserve_pooled([10]) is not None
