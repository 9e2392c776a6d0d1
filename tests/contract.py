"""The JSON fields of the HTTP contract (shared/API.md), as the tests check them."""

AUDIO_FILE_FIELDS = {
    "filename",
    "size",
    "duration",
    "bitrate",
    "bitrate_mode",
    "sample_rate",
    "channels",
    "mpeg_version",
    "title",
    "artist",
    "album",
    "etag",
    "uploaded_at",
    "status",
    "status_reason",
    "transcript_status",
    "progress",
    "source_format",
    "url",
}

QUEUE_FIELDS = {
    "name",
    "title",
    "description",
    "files",
    "play_mode",
    "stream_url",
    "total_duration",
    "version",
    "yoto_card_id",
    "updated_at",
}
