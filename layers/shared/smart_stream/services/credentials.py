"""Device-credential versions that outlive their item: a file or queue deleted and made again
under the same name starts past every version it ever had, so a URL revoked (or handed out)
before the deletion never works again."""

from __future__ import annotations

from smart_stream.ports import Catalog


def _key(kind: str, name: str) -> str:
    return f"retired-credential/{kind}/{name}"


def first_version(catalog: Catalog, kind: str, name: str) -> int:
    """The credential version a new item of this name starts at."""
    retired = catalog.get_value(_key(kind, name))
    return int(retired) + 1 if retired else 1


def retire(catalog: Catalog, kind: str, name: str, version: int) -> None:
    """Remember the last version of a deleted item."""
    retired = catalog.get_value(_key(kind, name))
    catalog.put_value(_key(kind, name), str(max(version, int(retired) if retired else 0)))
