"""Filename rules of the HTTP contract: 1-255 bytes of UTF-8, ends in .mp3 (any case), does not
start with a dot, no slash, backslash, NUL or control character."""

from __future__ import annotations

import re
import unicodedata

from smart_stream.domain.errors import InvalidFilenameError, InvalidQueueNameError

MAX_FILENAME_BYTES = 255
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: A queue's pack (its finite stream stored whole, see ``packs``): never a filename, since
#: filenames have no slash, so it is never listed, catalogued or served as a file.
PACK_PREFIX = "packs/"
_PACK_KEY = re.compile(PACK_PREFIX + r"[A-Za-z0-9_-]{1,64}/[0-9a-f]{32}\.mp3")


#: Unicode's Bidi_Control characters: they make a name display as another (spoofing).
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _is_control(char: str) -> bool:
    # Cc covers C0, DEL and C1; line and paragraph separators and the bidi controls are as
    # unwelcome in a name shown to parents. Other format characters stay allowed: the
    # zero-width joiner builds emoji (👨‍👩‍👧) and is part of several scripts' spelling.
    return unicodedata.category(char) in {"Cc", "Zl", "Zp"} or char in _BIDI_CONTROLS


def filename_problem(name: str) -> str | None:
    """Why ``name`` is not an acceptable filename, or None when it is."""
    if not name:
        return "The filename is empty."
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "The filename is not valid UTF-8."
    if size > MAX_FILENAME_BYTES:
        return f"The filename is {size} bytes long; the limit is {MAX_FILENAME_BYTES}."
    if name.startswith("."):
        return "The filename must not start with '.'."
    if "/" in name or "\\" in name:
        return "The filename must not contain '/' or '\\'."
    if any(_is_control(c) for c in name):
        return "The filename must not contain control characters."
    if not name.lower().endswith(".mp3"):
        return "The filename must end in '.mp3'."
    return None


def validate_filename(name: str) -> str:
    """Return ``name`` unchanged if acceptable, else raise ``InvalidFilenameError``."""
    problem = filename_problem(name)
    if problem is not None:
        raise InvalidFilenameError(problem)
    return name


def is_valid_queue_name(name: str) -> bool:
    return _QUEUE_NAME.fullmatch(name) is not None


def is_pack_key(key: str) -> bool:
    return _PACK_KEY.fullmatch(key) is not None


def validate_storage_key(key: str) -> str:
    """A filename, or a pack's key: the names storage reads and removes."""
    return key if is_pack_key(key) else validate_filename(key)


def validate_queue_name(name: str) -> str:
    if not is_valid_queue_name(name):
        raise InvalidQueueNameError(
            "A queue name is 1-64 characters of letters, digits, '-' and '_'."
        )
    return name
