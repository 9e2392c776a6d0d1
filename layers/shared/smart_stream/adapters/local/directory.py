"""Storage in a local directory: ``AUDIO_FILES_DIR/<filename>``, nothing else in it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from smart_stream.changes import ChangeFeed, ObjectChanged
from smart_stream.domain.errors import AudioExistsError, AudioNotFoundError, ObjectChangedError
from smart_stream.domain.names import (
    INCOMING_PREFIX,
    PACK_PREFIX,
    filename_problem,
    is_incoming_key,
    is_pack_key,
    validate_filename,
)
from smart_stream.domain.web import origin_of
from smart_stream.ports import Chunk, ObjectInfo, ObjectStream, PresignedPost, Span

_TEMP_PREFIX = ".incoming-"


def local_etag(stat: os.stat_result) -> str:
    # Cheap and strong enough for one file on one disk: any rewrite moves mtime or size.
    digest = hashlib.blake2b(
        f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}".encode(), digest_size=12
    ).hexdigest()
    return f'"{digest}"'


class LocalDirectoryStorage:
    """The Storage port over a directory. Writes go to a hidden temporary file and are
    renamed into place, so a half-written upload is never listed or served."""

    def __init__(
        self,
        root: Path,
        *,
        packs_root: Path | None = None,
        upload_signer: Callable[..., PresignedPost] | None = None,
        incoming_root: Path | None = None,
        changes: ChangeFeed | None = None,
    ):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # Packs and uploads waiting for their conversion live apart from the audio folder,
        # which holds the library's files only.
        self.packs_root = Path(packs_root) if packs_root else self.root.parent / ".packs"
        self.incoming_root = (
            Path(incoming_root) if incoming_root else self.root.parent / ".incoming"
        )
        self._upload_signer = upload_signer
        #: Told of every file stored or removed (the local server's S3 events).
        self.changes = changes or ChangeFeed()

    def _path(self, name: str) -> Path:
        """A library file's or an upload's path (what is written and removed as a file)."""
        if is_incoming_key(name):
            return self.incoming_root / name.removeprefix(INCOMING_PREFIX)
        return self.root / validate_filename(name)

    def _read_path(self, key: str) -> Path:
        """A file's, an upload's or a pack's path (what is read)."""
        if is_pack_key(key):
            return self.packs_root / key.removeprefix(PACK_PREFIX)
        return self._path(key)

    def _info(self, name: str, stat: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            name=name,
            size=stat.st_size,
            etag=local_etag(stat),
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
        )

    def head(self, name: str) -> ObjectInfo:
        try:
            stat = self._read_path(name).stat()
        except FileNotFoundError:
            raise AudioNotFoundError(name) from None
        if not os.path.isfile(self._read_path(name)):
            raise AudioNotFoundError(name)
        return self._info(name, stat)

    def exists(self, name: str) -> bool:
        return self._read_path(name).is_file()

    def open_range(
        self,
        name: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 256 * 1024,
    ) -> ObjectStream:
        try:
            handle = open(self._read_path(name), "rb")  # noqa: SIM115 - closed by the stream
        except (FileNotFoundError, IsADirectoryError):
            raise AudioNotFoundError(name) from None
        info = self._info(name, os.fstat(handle.fileno()))
        if if_match is not None and info.etag != if_match:
            handle.close()
            raise ObjectChangedError(f"{name!r} changed since it was catalogued.")
        last = info.size - 1 if end is None else min(end, info.size - 1)
        chunks = _read_chunks(handle, name, start, last, chunk_size)
        return ObjectStream(info, chunks, handle.close)

    def read_spans(self, spans: Sequence[Span], *, chunk_size: int) -> Generator[Chunk, None, None]:
        """Spans read straight into chunk-sized buffers, several files to a chunk: a queue
        of 500 short files costs an open, a stat and a read each, and as many sends as one
        file of the same size. Names are checked as the catalogue checked them (a span names
        a catalogued file), so the path is built without pathlib's cost."""
        root = os.fspath(self.root)
        buffer = memoryview(bytearray(0))
        filled = 0
        for span in spans:
            if os.sep in span.name or span.name in ("", ".", ".."):
                raise AudioNotFoundError(span.name)
            try:
                fd = os.open(os.path.join(root, span.name), os.O_RDONLY | os.O_CLOEXEC)
            except (FileNotFoundError, IsADirectoryError):
                raise AudioNotFoundError(span.name) from None
            try:
                stat = os.fstat(fd)
                if span.etag is not None and local_etag(stat) != span.etag:
                    raise ObjectChangedError(f"{span.name!r} changed since it was catalogued.")
                position, remaining = span.first, min(span.last, stat.st_size - 1) - span.first + 1
                while remaining > 0:
                    if filled == len(buffer):
                        if filled:
                            yield buffer  # bytes-like: sent as is, never reused
                        buffer = memoryview(bytearray(chunk_size))
                        filled = 0
                    want = min(remaining, len(buffer) - filled)
                    got = _read_into(fd, buffer[filled : filled + want], position)
                    if got <= 0:  # it shrank since the stat: a rewrite under way
                        raise ObjectChangedError(f"{span.name!r} changed while it was read.")
                    filled += got
                    position += got
                    remaining -= got
            finally:
                os.close(fd)
        if filled:
            yield buffer[:filled]

    def put(
        self,
        name: str,
        source: BinaryIO,
        *,
        overwrite: bool = True,
        content_type: str = "audio/mpeg",
    ) -> ObjectInfo:
        final = self._path(name)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=final.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, 0o644)
            if overwrite:
                os.replace(temp, final)
            else:
                try:
                    os.link(temp, final)  # atomic "create if absent"
                except FileExistsError:
                    raise AudioExistsError(name) from None
                finally:
                    temp.unlink(missing_ok=True)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        info = self._info(name, final.stat())
        self.changes.publish(ObjectChanged("ObjectCreated", info))
        return info

    def copy(self, source: str, name: str) -> ObjectInfo:
        try:
            with open(self._read_path(source), "rb") as original:
                return self.put(name, original, overwrite=True)
        except (FileNotFoundError, IsADirectoryError):
            raise AudioNotFoundError(source) from None

    def put_pack(self, key: str, chunks: Iterable[Chunk]) -> ObjectInfo:
        if not is_pack_key(key):
            raise ValueError(f"not a pack key: {key!r}")
        final = self._read_path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp_name, 0o644)
            os.replace(temp_name, final)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return self._info(key, final.stat())

    def delete_pack(self, key: str) -> None:
        if not is_pack_key(key):
            raise ValueError(f"not a pack key: {key!r}")
        path = self._read_path(key)
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # the queue's last pack: its folder goes too

    def iter_packs(self, queue: str | None = None) -> Iterator[str]:
        for path in sorted(self.packs_root.glob(f"{queue or '*'}/*.mp3")):
            key = f"{PACK_PREFIX}{path.parent.name}/{path.name}"
            if is_pack_key(key):
                yield key

    def delete(self, name: str) -> None:
        path = self._path(name)
        try:
            info = self._info(name, path.stat())
            path.unlink()
        except FileNotFoundError:
            raise AudioNotFoundError(name) from None
        if is_incoming_key(name):
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # the upload's own folder
        self.changes.publish(ObjectChanged("ObjectRemoved", info))

    def iter_objects(self) -> Iterator[ObjectInfo]:
        with os.scandir(self.root) as entries:
            for entry in entries:
                if filename_problem(entry.name) is None and entry.is_file():
                    with contextlib.suppress(FileNotFoundError):
                        yield self._info(entry.name, entry.stat())

    def presigned_post(
        self, name: str, *, max_size: int, expires_in: int, base_url: str
    ) -> PresignedPost:
        if self._upload_signer is None:
            raise RuntimeError("local uploads need a signer")
        if not is_incoming_key(name):
            validate_filename(name)
        return self._upload_signer(
            name, max_size=max_size, expires_in=expires_in, base_url=base_url
        )

    def upload_origin(self, base_url: str) -> str:
        return origin_of(base_url)  # the local twin answers on the server's own base


def _read_chunks(
    handle: BinaryIO, name: str, start: int, last: int, chunk_size: int
) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = last - start + 1
        while remaining > 0:
            chunk = handle.read(min(chunk_size, remaining))
            if not chunk:
                # It shrank since it was opened (a rewrite under way): the read fails, so that
                # no reader takes the bytes so far for the whole (a response is cut short).
                raise ObjectChangedError(f"{name!r} changed while it was read.")
            remaining -= len(chunk)
            yield chunk


def _read_into(fd: int, view: memoryview, position: int) -> int:
    """Read at ``position`` straight into ``view``: ``preadv`` where the system has it
    (Linux, the BSDs), else a seek and a ``readv`` (macOS)."""
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], position)
    os.lseek(fd, position, os.SEEK_SET)
    return os.readv(fd, [view])
