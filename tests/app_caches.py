"""The app's per-process caches, forgotten at once (tests and bench both change settings
between runs of the app's own code in one process)."""

from __future__ import annotations


def reset_caches() -> None:
    """Forget every cached setting, adapter and client (they are made once per process)."""
    from smart_stream.adapters.aws import clients as aws
    from smart_stream.catalog import get_catalog
    from smart_stream.device import streaming
    from smart_stream.services import auth, packs, queues
    from smart_stream.settings import get_settings
    from smart_stream.speech import get_speech_engine
    from smart_stream.storage import get_storage

    get_settings.cache_clear()
    get_storage.cache_clear()
    get_catalog.cache_clear()
    get_speech_engine.cache_clear()
    aws.client.cache_clear()
    auth._local_signing_key.cache_clear()
    streaming.records.clear()
    queues.device_records.clear()
    packs.misses.clear()
