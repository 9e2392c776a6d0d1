"""Filename rules of the HTTP contract (API.md "Names"): 1-255 bytes of UTF-8, ends in .mp3
(any case), does not start with '.', no '/', '\\', NUL or control character."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from smart_stream.domain.errors import InvalidFilenameError
from smart_stream.domain.names import (
    MAX_FILENAME_BYTES,
    filename_problem,
    incoming_key,
    is_incoming_key,
    is_valid_queue_name,
    library_name,
    upload_name_problem,
    validate_filename,
    validate_storage_key,
)

# Characters a parent might type: anything printable in any script (no control or format
# characters, no surrogates, no separators of lines), minus the two path separators.
name_chars = st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp"), blacklist_characters="/\\"
)
extensions = st.sampled_from([".mp3", ".MP3", ".Mp3", ".mP3"])


def _fits(name: str) -> bool:
    return len(name.encode("utf-8")) <= MAX_FILENAME_BYTES


valid_names = (
    st.tuples(st.text(alphabet=name_chars, min_size=0, max_size=80), extensions)
    .map(lambda parts: parts[0] + parts[1])
    .filter(lambda name: not name.startswith("."))
    .filter(_fits)
)


def assert_rejected(name: str) -> None:
    problem = filename_problem(name)
    assert problem, f"{name!r} was accepted"
    with pytest.raises(InvalidFilenameError) as caught:
        validate_filename(name)
    assert caught.value.message == problem
    assert caught.value.code == "invalid_filename"


@given(valid_names)
@example("a.mp3")
@example("Bedtime Story (Mum's voice) #2.mp3")
@example("Gute Nacht, Straße.MP3")
@example("おやすみ.mp3")
@example("🐻 bear.mp3")
@example("a" * (MAX_FILENAME_BYTES - 4) + ".mp3")
@example("é" * ((MAX_FILENAME_BYTES - 5) // 2) + "a.mp3")
@example(".mp3".join(["x", ".mp3"]))
def test_valid_names_are_accepted_unchanged(name):
    assert filename_problem(name) is None
    assert validate_filename(name) == name


@given(valid_names, st.data())
def test_a_slash_or_backslash_anywhere_is_rejected(name, data):
    position = data.draw(st.integers(0, len(name)))
    separator = data.draw(st.sampled_from(["/", "\\"]))
    assert_rejected(name[:position] + separator + name[position:])


control_chars = st.characters(whitelist_categories=("Cc",)) | st.sampled_from(
    ["\x00", "\x7f", "\x1b", "\n", "\r", "\t", "\x85", "\u202e", "\u2028", "\u2029"]
)


@given(valid_names, control_chars, st.data())
def test_a_control_character_anywhere_is_rejected(name, char, data):
    position = data.draw(st.integers(0, len(name)))
    assert_rejected(name[:position] + char + name[position:])


@given(valid_names)
def test_a_leading_dot_is_rejected(name):
    assert_rejected("." + name)
    assert_rejected("." + name[1:])


@given(valid_names, st.sampled_from(["é", "日", "🐻"]))
def test_over_255_bytes_is_rejected_even_when_under_255_characters(name, wide):
    """The limit is in bytes of UTF-8 (what S3 and file systems count), not characters."""
    stem = wide * (MAX_FILENAME_BYTES // len(wide.encode()))
    too_long = stem + name
    assert len(too_long.encode()) > MAX_FILENAME_BYTES
    assert_rejected(too_long)
    # As many wide characters as fit in the limit are fine.
    room = MAX_FILENAME_BYTES - 4
    fits = wide * (room // len(wide.encode())) + ".mp3"
    assert validate_filename(fits) == fits


def test_exactly_255_bytes_is_accepted_and_256_is_not():
    exact = "a" * (MAX_FILENAME_BYTES - 4) + ".mp3"
    assert len(exact.encode()) == 255
    assert validate_filename(exact) == exact
    assert_rejected("a" + exact)
    # 2-byte characters pushing a 129-character name to 256 bytes.
    wide = "é" * 126 + "ab.mp3"
    assert len(wide.encode()) == 258
    assert_rejected(wide)


@given(
    valid_names,
    st.sampled_from(
        [
            ".mp4",
            ".mp",
            ".mp33",
            ".wav",
            ".mp3.exe",
            ".mp3 ",
            ".mp3.",
            "mp3x",
            ".m p3",
            ".m\u0440" + "3",
        ]
    ),
)
def test_a_wrong_extension_is_rejected(name, wrong):
    # ".m\u0440" + "3" has a Cyrillic er: it only looks like .mp3.
    assert_rejected(name[:-4] + wrong)


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".mp3",
        "..mp3",
        "mp3",
        "x",
        "../x.mp3",
        "..\\x.mp3",
        "/etc/x.mp3",
        "\\\\server\\share\\x.mp3",
        "C:\\x.mp3",
        "a/../../x.mp3",
        "a\x00.mp3",
        "a.mp3\x00.txt",
        "a\nb.mp3",
        "a\rb.mp3",
        "a\x7fb.mp3",
        "a\u202egnp.mp3",  # right-to-left override: shows as another name
        ".hidden.mp3",
        "a\udc80.mp3",  # a lone surrogate is not UTF-8
    ],
)
def test_traversal_and_other_dangerous_names_are_rejected(name):
    assert_rejected(name)


@given(st.text(max_size=300))
def test_the_rules_are_exactly_the_contract(name):
    """Given any text, accepted exactly when every rule of the contract holds."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        assert_rejected(name)
        return
    acceptable = (
        1 <= size <= MAX_FILENAME_BYTES
        and name.lower().endswith(".mp3")
        and not name.startswith(".")
        and "/" not in name
        and "\\" not in name
        and not any(unicodedata.category(c) in {"Cc", "Zl", "Zp"} for c in name)
        and not any(c in BIDI_CONTROLS for c in name)
    )
    if acceptable:
        assert validate_filename(name) == name
    else:
        assert_rejected(name)


BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@pytest.mark.parametrize(
    "name",
    [
        "👨\u200d👩\u200d👧 family.mp3",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.mp3",
        "soft\u00adhyphen.mp3",
    ],
)
def test_joiners_and_other_format_characters_are_allowed(name):
    """Emoji sequences and scripts that spell with zero-width (non-)joiners are names too."""
    assert validate_filename(name) == name


@pytest.mark.parametrize("name", ["a", "Bedtime-Stories_2", "x" * 64, "0", "-", "_"])
def test_queue_names_accepted(name):
    assert is_valid_queue_name(name)


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "a b", "a.b", "a/b", "é", "a\n", "bedtime\n", "../q", "q!"]
)
def test_queue_names_rejected(name):
    assert not is_valid_queue_name(name)


@given(st.text(max_size=80))
def test_queue_names_are_1_to_64_ascii_letters_digits_dash_underscore(name):
    expected = 1 <= len(name) <= 64 and all(
        c.isascii() and (c.isalnum() or c in "-_") for c in name
    )
    assert is_valid_queue_name(name) == expected


# Uploads: any accepted audio extension, catalogued as <stem>.mp3 ------------------------------


@pytest.mark.parametrize(
    ("upload", "library"),
    [
        ("Grandma's story.m4a", "Grandma's story.mp3"),
        ("Book.M4B", "Book.mp3"),
        ("song.mp3", "song.mp3"),
        ("song.MP3", "song.mp3"),
        ("clip.mp4", "clip.mp3"),
        ("adts.aac", "adts.mp3"),
        ("cd track.wav", "cd track.mp3"),
        ("cd track.FLAC", "cd track.mp3"),
        ("voice.ogg", "voice.mp3"),
        ("voice.oga", "voice.mp3"),
        ("whatsapp.opus", "whatsapp.mp3"),
        ("recording.webm", "recording.mp3"),
        ("old.aif", "old.mp3"),
        ("old.AIFF", "old.mp3"),
        ("a.b.c.flac", "a.b.c.mp3"),
    ],
)
def test_an_upload_of_any_accepted_extension_becomes_its_stem_mp3(upload, library):
    assert upload_name_problem(upload) is None
    assert library_name(upload) == library


@pytest.mark.parametrize(
    "upload",
    ["notes.txt", "movie.mkv", "song.wma", "nothing", ".m4a", "a/b.m4a", "a\\b.flac", "tab\t.wav"],
)
def test_other_upload_names_are_refused_with_the_extensions_named(upload):
    problem = upload_name_problem(upload)
    assert problem is not None
    with pytest.raises(InvalidFilenameError):
        library_name(upload)
    if upload in ("notes.txt", "movie.mkv", "song.wma", "nothing"):
        assert ".m4a" in problem and ".webm" in problem and ".aiff" in problem


def test_library_files_still_end_in_mp3_only():
    assert filename_problem("story.m4a") is not None
    assert filename_problem("story.mp3") is None


def test_incoming_keys():
    upload_id = "0123456789abcdef" * 2
    key = incoming_key(upload_id, "Grandma's story.m4a")
    assert key == f"incoming/{upload_id}/Grandma's story.m4a"
    assert is_incoming_key(key) and validate_storage_key(key) == key
    assert not is_incoming_key(f"incoming/{upload_id}/notes.txt")
    assert not is_incoming_key(f"incoming/{upload_id[:-1]}/a.m4a")
    assert filename_problem(key) is not None, "never a library filename"
    with pytest.raises(InvalidFilenameError):
        incoming_key(upload_id, "notes.txt")
