"""Storage in one S3 bucket: the key is the bare filename."""

from __future__ import annotations

import io
import uuid
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, BinaryIO

from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from smart_stream.adapters.aws.s3_io import ChunkReader, iter_body
from smart_stream.changes import ChangeFeed, ObjectChanged
from smart_stream.domain.errors import (
    AudioExistsError,
    AudioNotFoundError,
    ObjectChangedError,
    ServiceUnavailableError,
)
from smart_stream.domain.names import (
    PACK_PREFIX,
    filename_problem,
    incoming_key,
    is_incoming_key,
    is_pack_key,
    validate_filename,
    validate_storage_key,
)
from smart_stream.domain.web import origin_of
from smart_stream.ports import Chunk, ObjectInfo, ObjectStream, PresignedPost, Span

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Short spans fetched ahead at once: each is a GET whose round trip is better spent waiting
#: in parallel. Bounded: at most this many short spans are in memory (within the client's
#: default pool of 10 connections).
PREFETCH_SPANS = 8

_PACK_PART = 8 * 1024 * 1024
_PACK_TRANSFER = TransferConfig(
    multipart_threshold=_PACK_PART, multipart_chunksize=_PACK_PART, max_concurrency=4
)

#: The content type an upload URL's form sends (the upload is judged by its content).
UPLOAD_CONTENT_TYPE = "application/octet-stream"
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_CHANGED = {"412", "PreconditionFailed"}
#: The user metadata (``x-amz-meta-write-id``) that names a conditional write.
_WRITE_ID = "write-id"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: Exception, name: str) -> Exception:
    """Turn an SDK failure into a domain error: AWS error text never reaches a client."""
    if isinstance(exc, ClientError):
        code = _code(exc)
        if code in _NOT_FOUND:
            return AudioNotFoundError(name)
        if code in _CHANGED:
            return ObjectChangedError(f"{name!r} changed since it was catalogued.")
    return ServiceUnavailableError("Audio storage is unavailable; try again shortly.")


def _writable(name: str) -> str:
    """A library file's name, or an upload's key: what ``put`` and ``delete`` take."""
    return name if is_incoming_key(name) else validate_filename(name)


class S3Storage:
    """The Storage port over an S3 bucket."""

    def __init__(self, bucket: str, client: S3Client, changes: ChangeFeed | None = None) -> None:
        self.bucket = bucket
        self.client = client
        #: Told of every file stored or removed through this adapter (deployed, S3 sends its
        #: own events and nothing listens here; the local server on S3 turns them into those).
        self.changes = changes or ChangeFeed()

    def _info(self, name: str, response: dict[str, Any], size: int) -> ObjectInfo:
        return ObjectInfo(
            name=name, size=size, etag=response["ETag"], last_modified=response["LastModified"]
        )

    def head(self, name: str) -> ObjectInfo:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=validate_storage_key(name))
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, name) from exc
        return self._info(name, dict(response), response["ContentLength"])

    def exists(self, name: str) -> bool:
        try:
            self.head(name)
        except AudioNotFoundError:
            return False
        return True

    def open_range(
        self,
        name: str,
        start: int = 0,
        end: int | None = None,
        *,
        if_match: str | None = None,
        chunk_size: int = 256 * 1024,
    ) -> ObjectStream:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": validate_storage_key(name),
            "Range": f"bytes={start}-{'' if end is None else end}",
        }
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        try:
            response = self.client.get_object(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, name) from exc
        # Content-Range is "bytes a-b/size": the total size rides along with a ranged GET.
        content_range = response.get("ContentRange") or ""
        total = content_range.rpartition("/")[2]
        size = int(total) if total.isdigit() else response["ContentLength"]
        body = response["Body"]
        return ObjectStream(
            self._info(name, dict(response), size),
            iter_body(body, chunk_size, name, _translate),
            body.close,
        )

    def read_spans(self, spans: Sequence[Span], *, chunk_size: int) -> Generator[Chunk, None, None]:
        """One GET per span. A span of at most a chunk is fetched whole, the next few ahead
        in parallel, and handed on as soon as it is its turn: a hang-up is noticed after one
        file, not after the dozens that would fill a chunk. A longer span is streamed.
        Closing drops what was asked for ahead and closes the read under way."""

        def whole(span: Span) -> bytes:
            stream = self._open_span(span, chunk_size)
            try:
                return b"".join(stream)
            finally:
                stream.close()

        def short(index: int) -> bool:
            return spans[index].length <= chunk_size

        pool: ThreadPoolExecutor | None = None
        ahead: dict[int, Future[bytes]] = {}
        try:
            for index, span in enumerate(spans):
                if not short(index):
                    stream = self._open_span(span, chunk_size)
                    try:
                        yield from stream
                    finally:
                        stream.close()
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(PREFETCH_SPANS, thread_name_prefix="span-read")
                for later in range(index, min(index + PREFETCH_SPANS, len(spans))):
                    if later not in ahead and short(later):
                        ahead[later] = pool.submit(whole, spans[later])
                yield ahead.pop(index).result()
        finally:
            for future in ahead.values():
                future.cancel()
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _open_span(self, span: Span, chunk_size: int) -> ObjectStream:
        return self.open_range(
            span.name, span.first, span.last, if_match=span.etag, chunk_size=chunk_size
        )

    def put(
        self,
        name: str,
        source: BinaryIO,
        *,
        overwrite: bool = True,
        content_type: str = "audio/mpeg",
    ) -> ObjectInfo:
        key = _writable(name)
        try:
            if overwrite:
                # A managed upload: one PUT for a small file, a multipart upload of 8 MiB
                # parts for a large one (a converted audiobook), so memory stays flat.
                self.client.upload_fileobj(
                    source,
                    self.bucket,
                    key,
                    ExtraArgs={"ContentType": content_type},
                    Config=_PACK_TRANSFER,
                )
            elif not self._put_if_absent(key, source, content_type):
                raise AudioExistsError(name)
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise _translate(exc, name) from exc
        info = self.head(name)
        self.changes.publish(ObjectChanged("ObjectCreated", info))
        return info

    def _put_if_absent(self, key: str, source: BinaryIO, content_type: str) -> bool:
        """S3's conditional write: False when the key exists. The object carries an id of
        this write, because botocore retries a write whose answer was lost (a time-out after
        S3 stored it), and S3 answers that retry 412: the object found is then this very
        write's, not one that was there before."""
        write_id = uuid.uuid4().hex
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=source,
                ContentType=content_type,
                IfNoneMatch="*",
                Metadata={_WRITE_ID: write_id},
            )
        except ClientError as exc:
            if _code(exc) not in _CHANGED and _code(exc) != "ConditionalRequestConflict":
                raise
            try:
                found = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as missing:
                if _code(missing) in _NOT_FOUND:
                    return False  # there, then removed: it was someone else's
                raise
            return found.get("Metadata", {}).get(_WRITE_ID) == write_id
        return True

    def copy(self, source: str, name: str) -> ObjectInfo:
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=_writable(name),
                CopySource={"Bucket": self.bucket, "Key": validate_storage_key(source)},
                ContentType="audio/mpeg",
                MetadataDirective="REPLACE",
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, source) from exc
        info = self.head(name)
        self.changes.publish(ObjectChanged("ObjectCreated", info))
        return info

    def put_pack(self, key: str, chunks: Iterable[Chunk]) -> ObjectInfo:
        if not is_pack_key(key):
            raise ValueError(f"not a pack key: {key!r}")
        # A managed (multipart) upload: parts of 8 MiB, a few at once, so memory stays
        # bounded whatever the pack's size; S3 shows the object only once it is complete.
        try:
            self.client.upload_fileobj(
                # Buffered: each read returns all it is asked for, so the upload sees parts
                # of its full size (a bare chunk would read as a short, single-part file).
                io.BufferedReader(ChunkReader(chunks), _PACK_PART),
                self.bucket,
                key,
                ExtraArgs={"ContentType": "audio/mpeg"},
                Config=_PACK_TRANSFER,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, key) from exc
        return self.head(key)

    def delete_pack(self, key: str) -> None:
        if not is_pack_key(key):
            raise ValueError(f"not a pack key: {key!r}")
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, key) from exc

    def iter_packs(self, queue: str | None = None) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{PACK_PREFIX}{queue}/" if queue else PACK_PREFIX
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    if is_pack_key(item["Key"]):
                        yield item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, prefix) from exc

    def delete(self, name: str) -> None:
        info = self.head(name)  # S3 deletes of missing keys succeed silently; the API says 404
        try:
            self.client.delete_object(Bucket=self.bucket, Key=_writable(name))
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, name) from exc
        self.changes.publish(ObjectChanged("ObjectRemoved", info))

    def iter_objects(self) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if filename_problem(key) is None:
                        yield ObjectInfo(key, item["Size"], item["ETag"], item["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc, "") from exc

    def presigned_post(
        self, name: str, *, max_size: int, expires_in: int, base_url: str
    ) -> PresignedPost:
        # Whatever the file is, it is judged by its content once it has arrived.
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=_writable(name),
            Fields={"Content-Type": UPLOAD_CONTENT_TYPE},
            Conditions=[
                ["content-length-range", 1, max_size],
                {"Content-Type": UPLOAD_CONTENT_TYPE},
            ],
            ExpiresIn=expires_in,
        )
        return PresignedPost(url=post["url"], fields=dict(post["fields"]))

    def upload_origin(self, base_url: str) -> str:
        # The form's URL is made by botocore (addressing style, regional endpoint): ask it
        # rather than guess. Presigning is local signing, no request.
        post = self.client.generate_presigned_post(
            Bucket=self.bucket, Key=incoming_key("0" * 32, "x.mp3")
        )
        return origin_of(post["url"])
