"""Catalog: the port and its adapters, chosen once from settings."""

from __future__ import annotations

import threading
from functools import lru_cache

from smart_stream.catalog.base import Catalog, Page, search_text
from smart_stream.settings import get_settings

__all__ = ["Catalog", "Page", "get_catalog", "search_text"]

SQLITE_FILENAME = "catalog.sqlite3"


#: Threads that ask at once (a request, the local server's event workers) make the adapter
#: one at a time: two SQLite migrations at once would find the database locked.
_making = threading.Lock()


@lru_cache(maxsize=1)
def get_catalog() -> Catalog:
    settings = get_settings()
    if settings.catalog_table:
        from smart_stream.adapters.aws.clients import client
        from smart_stream.catalog.dynamodb import DynamoCatalog

        return DynamoCatalog(settings.catalog_table, client("dynamodb"))
    from smart_stream.catalog.sqlite import SqliteCatalog

    with _making:
        return SqliteCatalog(settings.data_dir / SQLITE_FILENAME)
