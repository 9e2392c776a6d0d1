"""Storage: the port and its adapters, chosen once from settings."""

from __future__ import annotations

from functools import lru_cache

from smart_stream.settings import get_settings
from smart_stream.storage.base import Chunk, ObjectInfo, ObjectStream, PresignedPost, Span, Storage

__all__ = ["Chunk", "ObjectInfo", "ObjectStream", "PresignedPost", "Span", "Storage", "get_storage"]


@lru_cache(maxsize=1)
def get_storage() -> Storage:
    settings = get_settings()
    if settings.s3_audio_bucket:
        from smart_stream.adapters.aws.clients import client
        from smart_stream.storage.s3 import S3Storage

        return S3Storage(settings.s3_audio_bucket, client("s3"))
    from smart_stream.adapters.local.uploads import sign_local_upload
    from smart_stream.storage.local import LocalDirectoryStorage

    return LocalDirectoryStorage(
        settings.audio_files_dir,
        packs_root=settings.data_dir / "packs",
        upload_signer=sign_local_upload,
    )
