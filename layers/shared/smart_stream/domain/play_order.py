"""Play order: which file comes when, in each play mode. Shuffles are drawn from a seed
stored with the queue, so one URL always means the same bytes until the queue changes."""

from __future__ import annotations

import hashlib
import random

from smart_stream.domain.records import PlayMode, QueueRecord


def _shuffled(count: int, seed: int, round_no: int) -> list[int]:
    order = list(range(count))
    # A string seed is hashed with SHA-512: the same order in every process and version.
    random.Random(f"{seed}:{round_no}").shuffle(order)
    return order


def round_order(record: QueueRecord, mode: PlayMode, round_no: int) -> list[int]:
    """Entry indexes in play order for one round (one pass over every file).

    Endless shuffle draws a new order each round, and never plays the same file twice in a
    row across a round's boundary."""
    count = len(record.entries)
    if not mode.shuffled:
        return list(range(count))
    if mode is PlayMode.SHUFFLE or count < 3:
        # Two files can only alternate: every round repeats the first draw.
        return _shuffled(count, record.seed, 0)
    order = _shuffled(count, record.seed, round_no)
    if round_no > 0:
        # Swapping the first two never moves a round's last file (count >= 3), so the
        # previous round's last file is its draw's last.
        previous_last = _shuffled(count, record.seed, round_no - 1)[-1]
        if order[0] == previous_last:
            order[0], order[1] = order[1], order[0]
    return order


def cursor_key(name: str, mode: PlayMode, credential: str | None) -> str:
    """One cursor per device URL (two players on one card share it)."""
    raw = f"{name}\n{mode.value}\n{credential or 'management-token'}"
    return hashlib.sha256(raw.encode()).hexdigest()[:40]
