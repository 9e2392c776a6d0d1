"""Filename rules of the HTTP contract: 1-255 bytes of UTF-8, ends in .mp3 (any case), does not
start with a dot, no slash, backslash, NUL or control character."""

from __future__ import annotations

import re
import unicodedata

from smart_stream.domain.errors import InvalidFilenameError, InvalidQueueNameError

MAX_FILENAME_BYTES = 255
_QUEUE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The extensions an upload's name may end in (any case); its library name is ``<stem>.mp3``.
UPLOAD_EXTENSIONS = (
    ".mp3",
    ".m4a",
    ".m4b",
    ".mp4",
    ".aac",
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".webm",
    ".aif",
    ".aiff",
)
_EXTENSIONS = ", ".join(UPLOAD_EXTENSIONS)
#: Uploads waiting to be converted (``incoming/<id>/<upload name>``): never a filename, so
#: never listed, catalogued or served as one.
INCOMING_PREFIX = "incoming/"
_INCOMING_KEY = re.compile(INCOMING_PREFIX + r"[0-9a-f]{32}/([^/]+)")
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


def _name_problem(name: str, extensions: tuple[str, ...], what: str) -> str | None:
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
    if not name.lower().endswith(extensions):
        return f"The filename must end in {what}."
    return None


def filename_problem(name: str) -> str | None:
    """Why ``name`` is not an acceptable library filename, or None when it is."""
    return _name_problem(name, (".mp3",), "'.mp3'")


def upload_name_problem(name: str) -> str | None:
    """Why ``name`` is not an acceptable upload name, or None when it is."""
    return _name_problem(name, UPLOAD_EXTENSIONS, "an audio extension (" + _EXTENSIONS + ")")


def library_name(upload_name: str) -> str:
    """The library filename an upload becomes: ``<stem>.mp3`` ("Grandma's story.m4a" is
    "Grandma's story.mp3"); ``InvalidFilenameError`` when the upload's name breaks a rule."""
    problem = upload_name_problem(upload_name)
    if problem is not None:
        raise InvalidFilenameError(problem)
    stem = upload_name[: upload_name.rindex(".")]
    return validate_filename(stem + ".mp3")


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


#: A story to be spoken in the background waits as ``incoming/<id>/<stem>.story`` (its text
#: and voice, as JSON).
STORY_SUFFIX = ".story"


def _incoming_name_ok(name: str) -> bool:
    if name.endswith(STORY_SUFFIX):
        return filename_problem(name.removesuffix(STORY_SUFFIX) + ".mp3") is None
    return upload_name_problem(name) is None


def is_incoming_key(key: str) -> bool:
    match = _INCOMING_KEY.fullmatch(key)
    return match is not None and _incoming_name_ok(match.group(1))


def is_story_key(key: str) -> bool:
    return is_incoming_key(key) and key.endswith(STORY_SUFFIX)


def incoming_target(key: str) -> str:
    """The library filename what waits at ``key`` becomes."""
    name = key.rsplit("/", 1)[1]
    if name.endswith(STORY_SUFFIX):
        return validate_filename(name.removesuffix(STORY_SUFFIX) + ".mp3")
    return library_name(name)


def story_key(upload_id: str, filename: str) -> str:
    """Where a story to be spoken as the library file ``filename`` waits."""
    stem = validate_filename(filename)[: -len(".mp3")]
    return incoming_key(upload_id, stem + STORY_SUFFIX)


def incoming_key(upload_id: str, upload_name: str) -> str:
    """Where an upload waits for its conversion (``upload_id``: 32 hex digits)."""
    key = f"{INCOMING_PREFIX}{upload_id}/{upload_name}"
    if not is_incoming_key(key):
        raise InvalidFilenameError(upload_name_problem(upload_name) or "Not an upload's key.")
    return key


def validate_storage_key(key: str) -> str:
    """A filename, an upload's key or a pack's key: the names storage reads and removes."""
    return key if is_pack_key(key) or is_incoming_key(key) else validate_filename(key)


def validate_queue_name(name: str) -> str:
    if not is_valid_queue_name(name):
        raise InvalidQueueNameError(
            "A queue name is 1-64 characters of letters, digits, '-' and '_'."
        )
    return name
