"""Device URLs: where a player fetches a file or a queue's stream, with the credential it
carries. The two device routes' paths are written here once (the device apps serve them)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from smart_stream.domain.credentials import AUDIO_KIND, CREDENTIAL_PARAM, QUEUE_KIND
from smart_stream.domain.records import AudioRecord, QueueRecord
from smart_stream.services.access import Access

#: The device routes (Starlette paths; ``:name`` takes any character, see ``device.app``).
AUDIO_ROUTE = "/api/audio/{filename:name}"
STREAM_ROUTE = "/api/streams/{name}/stream.mp3"


class DeviceUrls:
    """Absolute device URLs from records and one base: ``PUBLIC_BASE_URL`` when set, else
    the device function's own URL (deployed, each function URL is a host of its own), else
    the base of the request being answered (local)."""

    def __init__(
        self,
        access: Access,
        *,
        public_base_url: str | None = None,
        audio_base_url: str | None = None,
        queue_base_url: str | None = None,
    ) -> None:
        self.access = access
        self._public = public_base_url
        self._audio = audio_base_url
        self._queue = queue_base_url

    def audio_base(self, request_base: str) -> str:
        return (self._public or self._audio or request_base).rstrip("/")

    def queue_base(self, request_base: str) -> str:
        return (self._public or self._queue or request_base).rstrip("/")

    def audio(self, record: AudioRecord, request_base: str) -> str:
        credential = self.access.device_credential(
            AUDIO_KIND, record.filename, record.credential_version
        )
        path = AUDIO_ROUTE.replace("{filename:name}", quote(record.filename, safe=""))
        return f"{self.audio_base(request_base)}{path}?{CREDENTIAL_PARAM}={credential}"

    def queue(self, record: QueueRecord, request_base: str) -> str:
        credential = self.access.device_credential(
            QUEUE_KIND, record.name, record.credential_version
        )
        path = STREAM_ROUTE.replace("{name}", quote(record.name))
        return f"{self.queue_base(request_base)}{path}?{CREDENTIAL_PARAM}={credential}"

    def for_request(self, request_base: str) -> RequestUrls:
        """This builder bound to the base of the request being answered."""
        return RequestUrls(self, request_base)


@dataclass(frozen=True)
class RequestUrls:
    """Device URLs for the answer to one request: what use cases that hand out URLs (a
    Yoto card) are given, so that they never see the request itself."""

    urls: DeviceUrls
    request_base: str

    @property
    def audio_base(self) -> str:
        return self.urls.audio_base(self.request_base)

    @property
    def queue_base(self) -> str:
        return self.urls.queue_base(self.request_base)

    def audio(self, record: AudioRecord) -> str:
        return self.urls.audio(record, self.request_base)

    def queue(self, record: QueueRecord) -> str:
        return self.urls.queue(record, self.request_base)
