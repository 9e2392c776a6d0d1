"""Sending a blocking source's chunks from an async response, one step ahead."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from smart_stream.ports import Chunk

#: Chunks read ahead of the socket. Enough to keep both busy; small, because what is read
#: ahead is read for nothing when the player hangs up.
READ_AHEAD_CHUNKS = 2


async def read_ahead(
    chunks: Iterator[Chunk], close: Callable[[], None], depth: int = READ_AHEAD_CHUNKS
) -> AsyncIterator[Chunk]:
    """Chunks from a blocking source, read on a thread of their own while the event loop
    writes the previous ones to the socket (one hop through the thread pool a chunk left the
    socket idle half the time). When the consumer stops, early or not, reading stops: at
    most the read under way completes, then ``close`` runs on the reading thread.

    The first chunk is sent before the second is read: reading is Python work that holds the
    GIL, and the event loop would wait for it to send the response's start."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    room = threading.Semaphore(1)  # depth once the first chunk is on its way
    stop = threading.Event()
    done = object()

    def hand_over(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            stop.set()

    def produce() -> None:
        try:
            while True:
                room.acquire()
                if stop.is_set():
                    return
                chunk = next(chunks, None)
                if chunk is None:
                    return
                hand_over(chunk)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(exc)
        finally:
            try:
                close()
            finally:
                hand_over(done)

    # In the request's context, as a thread-pool hop would be: what the source counts goes to
    # the request's metrics.
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(produce,), name="read-ahead", daemon=True).start()
    first = True
    try:
        while True:
            item = await queue.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, bytes | memoryview)
            yield item
            # A send to a client that has gone does not wait, so give the server a moment
            # to notice the hang-up (and cancel us) before asking for another read.
            await asyncio.sleep(0)
            room.release(depth if first else 1)
            first = False
    finally:
        stop.set()
        room.release()  # wake the reader if it waits for room
