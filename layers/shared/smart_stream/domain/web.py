"""Facts about URLs that several layers share."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_of(url: str) -> str:
    """The origin of an absolute URL, ``scheme://host[:port]``, as a browser compares them
    (and as a Content-Security-Policy names them): no path, no default port."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"not an absolute URL: {url!r}")
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased by urlsplit
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    port = parts.port
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"
