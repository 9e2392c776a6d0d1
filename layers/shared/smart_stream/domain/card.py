"""Yoto's "Make Your Own" content JSON for a queue.

The card format follows yoto.dev: a streaming track is ``{"key", "title", "type": "stream",
"format": "mp3", "trackUrl"}`` in a chapter; the streaming-track page
(https://yoto.dev/myo/streaming-tracks) also gives such a chapter ``hasStreams: true`` with
``duration`` and ``fileSize`` of 0, the track ``isNew``, and the content
``editSettings.transcodeAudioUploads``. The playlist schema
(https://yoto.dev/myo/how-playlists-work: zod's ``trackSchema``) has a numeric ``duration``
and ``fileSize`` on every track: a finite stream (one file, or a queue played through once)
carries both, in seconds and bytes, on its track and its chapter; an open-ended one (loop,
endless shuffle) has neither, as in Yoto's streaming example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: The longest card title Yoto takes, in JavaScript's UTF-16 units (zod's max).
MAX_TITLE_UNITS = 100


@dataclass(frozen=True)
class StreamChapter:
    """One chapter of one stream track, at its place (from 1) on the card."""

    title: str
    url: str
    number: int
    #: Seconds and bytes of a finite stream; None for an open-ended one.
    duration: float | None = None
    file_size: int | None = None


def _size(chapter: StreamChapter) -> dict[str, Any]:
    if chapter.duration is None or chapter.file_size is None:
        return {}
    return {"duration": round(chapter.duration, 3), "fileSize": chapter.file_size}


def _stream_track(key: str, chapter: StreamChapter) -> dict[str, Any]:
    return {
        "key": key,
        "title": chapter.title,
        "type": "stream",
        "format": "mp3",
        "trackUrl": chapter.url,
        "overlayLabel": str(chapter.number),
        "isNew": True,
        "display": {"icon16x16": None},
        **_size(chapter),
    }


def _chapter(key: str, chapter: StreamChapter) -> dict[str, Any]:
    return {
        "key": key,
        "title": chapter.title,
        "overlayLabel": str(chapter.number),
        "tracks": [_stream_track("01", chapter)],
        # What the streaming-track page gives a chapter of streams.
        "hasStreams": True,
        "duration": 0,
        "fileSize": 0,
        **_size(chapter),
        "display": {"icon16x16": None},
    }


def card_title(title: str) -> str:
    """At most 100 characters as Yoto counts them (JavaScript's UTF-16 units), so a title
    with emoji is not refused; never half of a surrogate pair."""
    kept, units = [], 0
    for char in title:
        units += 2 if ord(char) > 0xFFFF else 1
        if units > MAX_TITLE_UNITS:
            break
        kept.append(char)
    return "".join(kept)


def card_content(
    title: str, description: str, chapters: list[StreamChapter], card_id: str | None
) -> dict[str, Any]:
    """The content JSON: each chapter one stream track (one chapter for a whole queue, or a
    chapter per file so the player's skip buttons move between files)."""
    items = [_chapter(f"{chapter.number:02d}", chapter) for chapter in chapters]
    payload: dict[str, Any] = {
        "title": card_title(title),
        "content": {
            "chapters": items,
            "playbackType": "linear",
            "editSettings": {"transcodeAudioUploads": True},
        },
        "metadata": {"description": description},
    }
    if card_id:
        payload["cardId"] = card_id
    return payload


def card_id_of(answer: dict[str, Any]) -> str | None:
    """The card id in Yoto's answer to a content write."""
    card = answer.get("card")
    found = card.get("cardId") if isinstance(card, dict) else answer.get("cardId")
    return found if isinstance(found, str) and found else None
