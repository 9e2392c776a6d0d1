"""Cut a long text into parts a speech engine takes in one request (Polly: 3,000 characters),
at sentence boundaries when possible, else between words; never inside a word or an SSML
tag. Joining the parts gives the text back, whitespace at the cuts aside."""

from __future__ import annotations

import re

# A token is an SSML tag, a run of whitespace, or a run of anything else (a word with its
# punctuation, and any "<" that does not open a tag, as in "I <3 you"). Cuts fall only
# between tokens.
_TOKEN = re.compile(r"<[^<>]*>|\s+|(?:[^\s<]|<(?![^<>]*>))+")
# Sentence ends: . ! ? and the ellipsis, their ideographic forms, then closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f][\"'\u201d\u2019)\]]*$")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _ends_sentence(token: str) -> bool:
    return bool(_SENTENCE_END.search(token))


def split_text(text: str, limit: int) -> list[str]:
    """Parts of at most ``limit`` characters each (stripped, none empty).

    A part ends at the last sentence end (or line break) that fits; failing that at the last
    space that fits; a single word (or tag) longer than ``limit`` is the only thing ever cut,
    because nothing else can be done with it.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    parts: list[str] = []
    current: list[str] = []
    length = 0
    # Positions in `current` after which a cut is nicest: sentence ends, then spaces.
    sentence_cut = word_cut = -1

    def flush(upto: int) -> None:
        nonlocal current, length, sentence_cut, word_cut
        head, current = current[:upto], current[upto:]
        part = "".join(head).strip()
        if part:
            parts.append(part)
        length = sum(len(t) for t in current)
        sentence_cut = word_cut = -1
        for index, token in enumerate(current):
            _mark(index, token)

    def _mark(index: int, token: str) -> None:
        nonlocal sentence_cut, word_cut
        if token.isspace():
            word_cut = index + 1
            if "\n" in token or (index > 0 and _ends_sentence(current[index - 1])):
                sentence_cut = index + 1

    # Leading whitespace would count against the first part's limit: it is never kept.
    for token in _tokens(text.strip()):
        while len(token) > limit:
            # A lone "word" longer than a whole part: cut it, there is no other way.
            flush(len(current))
            parts.append(token[:limit])
            token = token[limit:]
        if length + len(token) > limit and not token.isspace():
            cut = sentence_cut if sentence_cut > 0 else word_cut
            flush(cut if cut > 0 else len(current))
            if length + len(token) > limit and word_cut > 0:
                # A sentence longer than a part: what is left of it goes up to its last space.
                flush(word_cut)
            if length + len(token) > limit:
                flush(len(current))
        current.append(token)
        length += len(token)
        _mark(len(current) - 1, token)
    flush(len(current))
    return [p for p in (part.strip() for part in parts) if p]


_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_ELEMENT = re.compile(r"<(/?)([A-Za-z][\w:.-]*)[^<>]*?(/?)>")


def plain_text(text: str) -> str:
    """The words of a text or an SSML body, tags gone and whitespace folded."""
    return re.sub(r"\s+", " ", _TAG.sub(" ", text)).strip()


def name_from_text(text: str) -> str:
    """A filename from the text's first words ("Once upon a time.mp3")."""
    words = _WORD.findall(plain_text(text))[:6]
    stem = " ".join(words)[:60].strip() or "Story"
    return stem + ".mp3"


def balance_ssml(parts: list[str]) -> list[str]:
    """Parts of one SSML body, each made well-formed: an element a cut leaves open is closed
    at the end of its part and opened again (same attributes) at the start of the next."""
    balanced = []
    open_elements: list[tuple[str, str]] = []  # (name, its opening tag)
    for part in parts:
        reopened = "".join(tag for _, tag in open_elements)
        for match in _ELEMENT.finditer(part):
            closing, name, self_closing = match.groups()
            if self_closing:
                continue
            if not closing:
                open_elements.append((name, match.group(0)))
                continue
            for index in range(len(open_elements) - 1, -1, -1):
                if open_elements[index][0] == name:
                    del open_elements[index:]
                    break
        closed = "".join(f"</{name}>" for name, _ in reversed(open_elements))
        balanced.append(reopened + part + closed)
    return balanced
