"""Open-ended streams (loop, endless-shuffle) of one device URL: they play until just before
the function's deadline, end on a frame boundary, and leave a cursor in the Catalog so that
the next request on the same URL carries on where this one stopped."""

from __future__ import annotations

from collections.abc import Callable, Generator

from smart_stream.audio.frames import whole_frames
from smart_stream.domain.play_order import round_order
from smart_stream.domain.records import PlayMode, QueueRecord, StreamCursor
from smart_stream.ports import Catalog, Storage
from smart_stream.telemetry import STREAMS_ENDED, count

#: Chunk size of an open stream's reads: small, so a stream ends close to its deadline.
OPEN_CHUNK_BYTES = 64 * 1024


class OpenStream:
    """One session of an open-ended stream.

    Every session carries audio: the first whole frame run goes out before the deadline or
    the byte budget is looked at, so a player that reconnects always moves on, however late
    a session starts (a session with nothing but the title tag would play silence forever).
    """

    def __init__(
        self,
        record: QueueRecord,
        mode: PlayMode,
        key: str,
        *,
        catalog: Catalog,
        storage: Storage,
        title_tag: bytes,
        clock: Callable[[], float],
        session_seconds: float,
        session_bytes: int,
        chunk_size: int = OPEN_CHUNK_BYTES,
    ) -> None:
        self.record = record
        self.mode = mode
        self.key = key
        self.catalog = catalog
        self.storage = storage
        self.title_tag = title_tag
        self.clock = clock
        self.deadline = clock() + session_seconds
        self.byte_budget = session_bytes
        self.chunk_size = chunk_size

    def _start(self) -> StreamCursor:
        cursor = self.catalog.get_cursor(self.key)
        if cursor is None or cursor.queue_version != self.record.version:
            # A new URL, or the queue changed: start from the top of the current round.
            cursor = StreamCursor(
                queue_version=self.record.version, round=cursor.round if cursor else 0
            )
        if cursor.index >= len(self.record.entries):
            cursor = cursor.model_copy(update={"round": cursor.round + 1, "index": 0, "offset": 0})
        return cursor

    def _advance(self, cursor: StreamCursor) -> StreamCursor:
        index = cursor.index + 1
        if index >= len(self.record.entries):
            return cursor.model_copy(update={"round": cursor.round + 1, "index": 0, "offset": 0})
        return cursor.model_copy(update={"index": index, "offset": 0})

    def _over(self, sent: int, run: int) -> str | None:
        """Why the session ends before ``run``: its ``deadline``, or its ``size``; None
        while it goes on."""
        if self.clock() >= self.deadline:
            return "deadline"
        return "size" if sent + run > self.byte_budget else None

    def chunks(self) -> Generator[bytes, None, None]:
        cursor = self._start()
        yield self.title_tag
        sent = len(self.title_tag)
        audio_sent = False
        while True:
            order = round_order(self.record, self.mode, cursor.round)
            entry = self.record.entries[order[cursor.index]]
            # The file boundary: a reconnect from here on hears the next file, not this one.
            self.catalog.put_cursor(self.key, self._advance(cursor))
            stream = self.storage.open_range(
                entry.filename,
                entry.audio_start + cursor.offset,
                entry.audio_end - 1,
                if_match=entry.etag,
                chunk_size=self.chunk_size,
            )
            offset = cursor.offset
            try:
                for run in whole_frames(iter(stream)):
                    reason = self._over(sent, len(run)) if audio_sent else None
                    if reason:
                        # Stop on this frame boundary; the next request starts right here.
                        self.catalog.put_cursor(
                            self.key, cursor.model_copy(update={"offset": offset})
                        )
                        count(STREAMS_ENDED, reason=reason)
                        return
                    yield run
                    audio_sent = True
                    sent += len(run)
                    offset += len(run)
            finally:
                stream.close()
            cursor = self._advance(cursor)
