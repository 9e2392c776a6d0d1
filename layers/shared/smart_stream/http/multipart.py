"""Reading a multipart upload: field ``file`` (the audio) and optional ``filename``."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

from smart_stream.domain.errors import BadRequestError, UnsupportedMediaTypeError


@dataclass
class UploadedFile:
    filename: str
    source: BinaryIO
    size: int


def _text(value: bytes | None) -> str:
    try:
        return (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("The filename is not valid UTF-8.") from None


def parse_upload(content_type: str, body: bytes) -> UploadedFile:
    """The file of a ``multipart/form-data`` body. Parts larger than 1 MiB spill to a
    temporary file, so memory stays bounded whatever is sent."""
    from python_multipart import parse_form
    from python_multipart.exceptions import FormParserError

    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError(
            "Send the file as multipart/form-data with the audio in a field named 'file'."
        )
    fields: dict[bytes, bytes | None] = {}
    files: dict[bytes, Any] = {}
    try:
        parse_form(
            {
                "Content-Type": content_type.encode("latin-1"),
                "Content-Length": str(len(body)).encode(),
            },
            io.BytesIO(body),
            lambda field: fields.__setitem__(field.field_name or b"", field.value),
            lambda file: files.__setitem__(file.field_name or b"", file),
        )
    except (FormParserError, ValueError) as exc:
        raise BadRequestError(f"The multipart body cannot be read: {exc}.") from None
    upload = files.get(b"file")
    if upload is None:
        raise BadRequestError("The multipart body has no field named 'file'.")
    name = _text(fields.get(b"filename")) or _text(upload.file_name)
    if not name:
        raise BadRequestError("Name the file: give the 'file' part a filename or add 'filename'.")
    source = upload.file_object
    source.seek(0)
    return UploadedFile(filename=name, source=source, size=upload.size)
