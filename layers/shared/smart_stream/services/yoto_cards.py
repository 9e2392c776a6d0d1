"""A queue on a Yoto card: its MYO content JSON, written to (or removed from) the parent's
Yoto account."""

from __future__ import annotations

from typing import Any

from smart_stream.domain.card import StreamChapter, card_content, card_id_of
from smart_stream.domain.errors import NoCardError, NoPublicUrlError, YotoFailedError
from smart_stream.domain.records import QueueRecord
from smart_stream.ports import Catalog
from smart_stream.services.layouts import Layouts
from smart_stream.services.queues import Queues
from smart_stream.services.urls import RequestUrls
from smart_stream.services.yoto_signin import YotoSignIn, response_json


def _https(base: str) -> str:
    if not base.startswith("https://"):
        raise NoPublicUrlError(
            f"A Yoto player needs a public https address, and this server's is {base}. "
            "Set PUBLIC_BASE_URL to the https address that reaches it (a reverse proxy or a "
            "tunnel; see the README), or use the deployed stack."
        )
    return base


class YotoCards:
    def __init__(
        self, queues: Queues, catalog: Catalog, signin: YotoSignIn, layouts: Layouts
    ) -> None:
        self.queues = queues
        self.catalog = catalog
        self.signin = signin
        self.layouts = layouts

    def content(
        self, record: QueueRecord, urls: RequestUrls, *, chapters: bool = False
    ) -> dict[str, Any]:
        """The MYO content JSON for a queue, its streams at ``urls``: one chapter streaming
        the whole queue, or (with ``chapters``) a chapter per file, so the player's skip
        buttons move between files. A chapter keeps its file's place in the queue. A file,
        or a queue played through once, gives its length in seconds and bytes."""
        if chapters:
            _https(urls.audio_base)
            items = []
            for number, filename in enumerate(record.files, start=1):
                audio = self.catalog.get_audio(filename)
                if audio is not None:
                    title = audio.title or filename.rsplit(".", 1)[0]
                    items.append(
                        StreamChapter(title, urls.audio(audio), number, audio.duration, audio.size)
                    )
        else:
            _https(urls.queue_base)
            duration: float | None = None
            size: int | None = None
            if record.play_mode.finite:
                duration = record.total_duration
                size = self.layouts.finite(record, record.play_mode).size
            items = [StreamChapter(record.title, urls.queue(record), 1, duration, size)]
        return card_content(record.title, record.description, items, record.yoto_card_id)

    def push(
        self, name: str, urls: RequestUrls, *, chapters: bool = False
    ) -> tuple[bool, QueueRecord]:
        """Create the queue's card in the parent's Yoto account (True), or update the same
        card (False). The card id is saved with the queue only once Yoto has answered with
        it."""
        record = self.queues.get(name)
        payload = self.content(record, urls, chapters=chapters)
        response = self.signin.call("POST", "/content", json=payload)
        if response.status_code in (400, 404) and "cardId" in payload:
            # The parent deleted the card in the Yoto app: Yoto answers 400 ("Deleted card
            # cannot be restored"; 404 for an id it never had). Make a new card; a payload
            # Yoto refuses for itself is refused again below.
            record = record.model_copy(update={"yoto_card_id": None})
            del payload["cardId"]
            response = self.signin.call("POST", "/content", json=payload)
        if response.status_code >= 400:
            raise YotoFailedError(
                f"Yoto refused the card (HTTP {response.status_code}); nothing was changed."
            )
        card_id = card_id_of(response_json(response))
        if card_id is None:
            raise YotoFailedError("Yoto's answer did not name the card; nothing was saved.")
        created = record.yoto_card_id is None
        return created, self.queues.set_card(name, card_id)

    def remove(self, name: str) -> None:
        record = self.queues.get(name)
        if not record.yoto_card_id:
            raise NoCardError(f"The queue {name!r} has no Yoto card.")
        response = self.signin.call("DELETE", f"/content/{record.yoto_card_id}")
        if response.status_code >= 400 and response.status_code != 404:
            raise YotoFailedError(
                f"Yoto refused to remove the card (HTTP {response.status_code}); it is still there."
            )
        self.queues.set_card(name, None)
