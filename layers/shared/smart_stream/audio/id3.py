"""The one ID3v2 tag a queue's stream starts with."""

from __future__ import annotations

import io


def title_tag(title: str) -> bytes:
    """An ID3v2 tag holding the stream's title and nothing else, without padding."""
    from mutagen.id3 import ID3, TIT2

    tag = ID3()
    tag.add(TIT2(encoding=3, text=title))
    out = io.BytesIO()
    tag.save(out, padding=lambda info: 0)
    return out.getvalue()
