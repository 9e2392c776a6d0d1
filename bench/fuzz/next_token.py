"""The list's paging token (``smart_stream.http.requests.decode_token``): base64url JSON
``{"after": <filename>}``, which any client can forge.

It may raise only ``InvalidQueryError`` (400); a name it hands the catalogue must be one the
catalogue can take (text that encodes as UTF-8: SQLite and DynamoDB refuse anything else).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from bench.fuzz.engine import Finding, Target
from smart_stream.domain.errors import InvalidQueryError
from smart_stream.http.requests import decode_token, encode_token


def _b64(raw: bytes, padded: bool) -> str:
    text = base64.urlsafe_b64encode(raw).decode()
    return text if padded else text.rstrip("=")


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True),
        st.text(max_size=30),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=8,
    )


def _token_json() -> st.SearchStrategy[str]:
    """JSON text a token could carry: the real shape with any value, odd documents, and
    JSON that Python's json module reads but strict JSON forbids (NaN, lone surrogates)."""
    after = st.one_of(
        st.text(max_size=40),
        st.text(st.characters(codec="utf-8"), max_size=40),
        _json_values(),
    )
    real = st.builds(lambda value: json.dumps({"after": value}), after)
    extra = st.builds(
        lambda value, more: json.dumps({"after": value, **more}),
        after,
        st.dictionaries(st.text(max_size=5), _json_values(), max_size=3),
    )
    escapes = st.builds(
        lambda units: '{"after": "' + "".join(f"\\u{u:04x}" for u in units) + '"}',
        st.lists(st.integers(0, 0xFFFF), max_size=6),
    )
    odd = st.one_of(
        st.builds(json.dumps, _json_values()),
        st.integers(0, 3000).map(lambda n: "[" * n),
        st.integers(0, 3000).map(lambda n: '{"after":' * n),
        st.sampled_from(['{"after": NaN}', '{"after": Infinity}', "{}", '{"AFTER": "a"}', ""]),
    )
    return st.one_of(real, extra, escapes, odd)


def _encoded(documents: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    raw = st.one_of(
        documents.map(str.encode),
        documents.map(lambda text: text.encode("utf-16")),
        st.binary(max_size=60),
    )
    return st.builds(_b64, raw, st.booleans())


def _mutated(tokens: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A token with characters replaced, inserted or removed."""

    def mutate(token: str, at: int, what: str, how: int) -> str:
        at = at % (len(token) + 1)
        if how == 0:
            return token[:at] + what + token[at + 1 :]
        if how == 1:
            return token[:at] + what + token[at:]
        return token[:at] + token[at + len(what) + 1 :]

    return st.builds(mutate, tokens, st.integers(0, 200), st.text(max_size=3), st.integers(0, 2))


def strategy() -> st.SearchStrategy[str]:
    encoded = _encoded(_token_json())
    return st.one_of(encoded, encoded, _mutated(encoded), st.text(max_size=80))


def check(token: str) -> None:
    try:
        after = decode_token(token)
    except InvalidQueryError:
        return
    if not isinstance(after, str):
        raise Finding(f"decoded a {type(after).__name__}, not a name")
    try:
        after.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Finding(f"decoded a name the catalogue cannot store: {after!r} ({exc})") from None
    if decode_token(encode_token(after)) != after:
        raise Finding(f"{after!r} does not survive encode_token then decode_token")


def size(token: str) -> int:
    return len(token)


def _document(text: str, n: int) -> str:
    """A token of about ``n`` characters holding ``text`` repeated."""
    raw = text * max(1, (n * 3 // 4) // len(text))
    return _b64(raw.encode(), padded=False)


SHAPES = {
    "plain characters": lambda n: "A" * n,
    "a long name": lambda n: _b64(
        json.dumps({"after": "a" * max(1, n * 3 // 4 - 14)}).encode(), False
    ),
    "escaped name": lambda n: _b64(
        ('{"after": "' + "\\u00e9" * max(1, (n * 3 // 4) // 6) + '"}').encode(), False
    ),
    "deep nesting": lambda n: _document("[", n),
    "many keys": lambda n: _b64(
        ('{"after": "a", ' + '"k": 1, ' * max(1, (n * 3 // 4) // 8) + '"z": 0}').encode(), False
    ),
}

TARGET = Target(
    name="next_token",
    about="the list's paging token (http.requests.decode_token)",
    strategy=strategy,
    check=check,
    size=size,
    shapes=SHAPES,
)
