"""The parents' page: its static files, served with the headers that keep them safe.

The page is plain files (``functions/page/static``): HTML, ES modules, CSS and an icon. It
runs with no inline script or style, so the policy can be ``default-src 'self'``; audio
previews and large uploads may go to other origins (the device functions' URLs, the
bucket), which the policy names from the settings.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from smart_stream.domain.errors import NotFoundError
from smart_stream.domain.web import origin_of
from smart_stream.ports import Storage
from smart_stream.services.urls import DeviceUrls

INDEX = "index.html"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
#: A served file's name: one plain name in the folder (no path, no hidden file).
_ASSET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)")


def content_security_policy(*, media: Iterable[str], connect: Iterable[str]) -> str:
    """The page's policy: its own files only, plus the origins its audio previews
    (``media``) and its uploads (``connect``) really use."""

    def sources(extra: Iterable[str]) -> str:
        return " ".join(["'self'", *sorted(set(extra))])

    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            # blob: plays a recording back before it is saved.
            f"media-src {sources(media)} blob:",
            f"connect-src {sources(connect)}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def page_policy(urls: DeviceUrls, storage: Storage, request_base: str) -> str:
    """The policy for a page served at ``request_base``: previews play from the device
    URLs' base, large uploads go where the storage's upload forms go."""
    media = {origin_of(urls.audio_base(request_base)), origin_of(urls.queue_base(request_base))}
    connect = {origin_of(storage.upload_origin(request_base))}
    self_origin = origin_of(request_base)
    return content_security_policy(media=media - {self_origin}, connect=connect - {self_origin})


class PageFiles:
    """The page's files in one folder, each answered with its type, a strong ETag (so a
    browser asks again and gets a 304 until the file changes) and the security headers."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def response(self, name: str, *, policy: str, if_none_match: str | None) -> Response:
        match = _ASSET_NAME.fullmatch(name)
        path = self.directory / name
        if match is None or match.group(1) not in CONTENT_TYPES or not path.is_file():
            raise NotFoundError("There is nothing at this path.")
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {
            "Content-Security-Policy": policy,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cache-Control": "no-cache",
            "ETag": etag,
        }
        if if_none_match is not None and etag in {tag.strip() for tag in if_none_match.split(",")}:
            return Response(status_code=304, headers=headers, body="")
        content_type = CONTENT_TYPES[match.group(1)]
        text = body.decode("utf-8") if content_type.endswith("utf-8") else body
        return Response(status_code=200, content_type=content_type, body=text, headers=headers)
