"""Files copied into (or removed from) AUDIO_FILES_DIR by hand become the bucket's events too:
at start-up (what changed while the server was stopped) and while it runs (once a copied
file's size has stopped changing, so a half-copied file is not judged)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from smart_stream.adapters.local.directory import local_etag
from smart_stream.changes import ObjectChanged
from smart_stream.domain.names import filename_problem, upload_name_problem
from smart_stream.domain.records import AudioStatus
from smart_stream.ports import Catalog, ObjectInfo

logger = logging.getLogger("local_server")

Emit = Callable[[str, ObjectInfo], None]


@dataclass
class _Settling:
    size: int
    mtime_ns: int
    quiet_polls: int = 0


class DirectoryWatcher:
    """Polls the audio directory (no platform file-event API needed, works on every disk).

    ``known`` is what the catalogue reflects (name -> etag); writes made through Storage
    report themselves (``observe``), so only changes made by hand produce events here.
    """

    def __init__(
        self,
        root: Path,
        emit: Emit,
        *,
        interval: float = 1.0,
        settle_polls: int = 2,
        adopt: Callable[[Path], None] | None = None,
    ):
        self.root = Path(root)
        self.emit = emit
        #: Given each settled file of another accepted audio format (``story.m4a``): it goes
        #: to be converted, and becomes ``story.mp3``.
        self.adopt = adopt
        self.interval = interval
        self.settle_polls = settle_polls
        self.known: dict[str, str] = {}
        self._settling: dict[str, _Settling] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # Storage listener: writes through the app are catalogued by their own events.
    def observe_change(self, change: ObjectChanged) -> None:
        self.observe(change.kind, change.info)

    def observe(self, kind: str, info: ObjectInfo) -> None:
        with self._lock:
            if kind == "ObjectCreated":
                self.known[info.name] = info.etag
            else:
                self.known.pop(info.name, None)
            self._settling.pop(info.name, None)

    def reconcile(self, catalog: Catalog) -> None:
        """Start-up: compare the directory with the catalogue. Files the catalogue lacks, or
        holds another version of, are (re)catalogued once settled; records whose file is gone
        are removed."""
        catalogued: dict[str, str] = {}
        converting: set[str] = set()
        after: str | None = None
        while True:
            page = catalog.list_audio(limit=1000, after=after, statuses=tuple(AudioStatus))
            catalogued.update({r.filename: r.etag for r in page.records})
            converting.update(
                r.filename for r in page.records if r.status is AudioStatus.CONVERTING
            )
            if page.after is None:
                break
            after = page.after
        on_disk = self._scan()
        # A name being converted belongs to its conversion (and, if it dies, to the sweep):
        # its record has no file yet, or stands for an upload that replaces the one on disk.
        for name in converting:
            catalogued.pop(name, None)
            on_disk.pop(name, None)
        with self._lock:
            for name, (stat, etag) in on_disk.items():
                if catalogued.get(name) == etag:
                    self.known[name] = etag
                else:
                    self._settling[name] = _Settling(stat.st_size, stat.st_mtime_ns)
        for name in catalogued.keys() - on_disk.keys():
            self.emit("ObjectRemoved", _gone(name))

    def poll(self) -> None:
        on_disk = self._scan()
        ready: list[ObjectInfo] = []
        adopted: list[Path] = []
        removed: list[str] = []
        with self._lock:
            for name, (stat, etag) in on_disk.items():
                if self.known.get(name) == etag:
                    continue
                settling = self._settling.get(name)
                if settling is None or (settling.size, settling.mtime_ns) != (
                    stat.st_size,
                    stat.st_mtime_ns,
                ):
                    self._settling[name] = _Settling(stat.st_size, stat.st_mtime_ns)
                    continue
                settling.quiet_polls += 1
                if settling.quiet_polls >= self.settle_polls and filename_problem(name):
                    del self._settling[name]
                    adopted.append(self.root / name)  # not an MP3: converted, then gone
                elif settling.quiet_polls >= self.settle_polls:
                    del self._settling[name]
                    self.known[name] = etag
                    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                    ready.append(ObjectInfo(name, stat.st_size, etag, modified))
            for name in list(self.known.keys() - on_disk.keys()):
                del self.known[name]
                removed.append(name)
            for name in list(self._settling.keys() - on_disk.keys()):
                del self._settling[name]
        for path in adopted:
            if self.adopt is not None:
                self.adopt(path)
        for info in ready:
            self.emit("ObjectCreated", info)
        for name in removed:
            self.emit("ObjectRemoved", _gone(name))

    def _scan(self) -> dict[str, tuple[os.stat_result, str]]:
        found = {}
        try:
            with os.scandir(self.root) as entries:
                for entry in entries:
                    if filename_problem(entry.name) and (
                        self.adopt is None or upload_name_problem(entry.name)
                    ):
                        continue  # hidden temporaries, other files: never audio
                    try:
                        if entry.is_file():
                            stat = entry.stat()
                            found[entry.name] = (stat, local_etag(stat))
                    except FileNotFoundError:
                        continue
        except FileNotFoundError:
            pass
        return found

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="audio-watcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:
                logger.exception("watching %s failed; trying again", self.root)


def _gone(name: str) -> ObjectInfo:
    return ObjectInfo(name, 0, "", datetime.now(UTC))
