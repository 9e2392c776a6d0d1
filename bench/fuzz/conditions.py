"""The device routes' header parsers (``smart_stream.device.conditions``): Range, If-Range,
If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since, as a player or a cache
sends them, and as anyone else might.

They may raise only ``RangeNotSatisfiableError`` (416) and ``PreconditionFailedError`` (412);
a range they return must lie inside the file.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from bench.fuzz.engine import Finding, Target
from smart_stream.device.conditions import (
    ByteRange,
    evaluate_preconditions,
    parse_etags,
    parse_range,
    range_applies,
)
from smart_stream.domain.errors import PreconditionFailedError, RangeNotSatisfiableError

ETAG = '"5d41402abc4b2a76b9719d911017c592"'
LAST_MODIFIED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

#: A case: the request's headers (lower-case names), the file's size and last modification.
Case = tuple[dict[str, str], int, datetime]

# Text as it reaches the parser: Starlette decodes headers as latin-1; API Gateway's event
# can carry any character.
_latin1 = st.text(st.characters(codec="latin-1"), max_size=40)
_any_text = st.text(max_size=40)
_junk = st.sampled_from(["", " ", "\t", ",", "-", '"', "W/", "*", "=", ";", "\x00", "\u00a0"])


def _number() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(0, 2**70).map(str),
        st.integers(0, 20).map(str),
        # Longer than int() takes (4300 digits), and just under.
        st.integers(4290, 4310).map(lambda n: "9" * n),
        st.sampled_from(["", "-1", "+1", "0x10", "1_0", " 1", "1 ", "1.5", "١٢", "¹", "0" * 30]),
    )


def _range_header() -> st.SearchStrategy[str]:
    spec = st.builds(
        lambda a, sep, b: f"{a}{sep}{b}",
        _number(),
        st.sampled_from(["-", "-", "--", "", " - ", "\u2013"]),
        _number(),
    )
    specs = st.builds(
        lambda parts, sep: sep.join(parts),
        st.lists(spec | _junk, max_size=4),
        st.sampled_from([",", ", ", " ,", ",,", ";"]),
    )
    unit = st.sampled_from(["bytes", "BYTES", " bytes ", "byte", "items", "", "bytes\x00", "ß"])
    return st.builds(
        lambda u, eq, s: f"{u}{eq}{s}", unit, st.sampled_from(["=", "==", " = ", "", "=="]), specs
    )


def _etag_list() -> st.SearchStrategy[str]:
    opaque = st.text(st.characters(codec="latin-1"), max_size=12)
    member = st.one_of(
        st.builds(lambda w, o: f'{w}"{o}"', st.sampled_from(["", "W/", "w/", "W/ ", " "]), opaque),
        st.sampled_from(["*", ETAG, f"W/{ETAG}", ETAG[:-1], ETAG[1:], '"', '""', "W/"]),
        opaque,
    )
    return st.builds(
        lambda parts, sep: sep.join(parts),
        st.lists(member, max_size=5),
        st.sampled_from([",", ", ", " , ", ",,", " ", "\t,"]),
    )


def _http_date() -> st.SearchStrategy[str]:
    real = st.datetimes(
        min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
    ).map(lambda moment: moment.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    odd = st.builds(
        lambda wk, d, mon, y, h, m, s, zone: f"{wk}{d} {mon} {y} {h}:{m}:{s} {zone}",
        st.sampled_from(["Mon, ", "", "Sunday, ", "xx, "]),
        st.integers(-1, 99),
        st.sampled_from(["Jan", "Feb", "Dec", "jan", "Foo", "1"]),
        st.one_of(st.integers(-10, 10_000), st.integers(0, 10**30), st.integers(0, 99)),
        st.integers(0, 99),
        st.integers(0, 99),
        st.one_of(st.integers(0, 99), st.just("60.5")),
        st.one_of(
            st.sampled_from(["GMT", "UTC", "Z", "", "EST", "-0000", "+0000", "+2400", "-2400"]),
            st.integers(-(10**8), 10**8).map(lambda n: f"{n:+05d}"),
        ),
    )
    return real | odd | st.just(LAST_MODIFIED.strftime("%a, %d %b %Y %H:%M:%S GMT"))


def _value(grammar: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(grammar, grammar, _latin1, _any_text)


def strategy() -> st.SearchStrategy[Case]:
    dates = _value(_http_date())
    tags = _value(_etag_list())
    headers = st.fixed_dictionaries(
        {},
        optional={
            "range": _value(_range_header()),
            "if-range": st.one_of(tags, dates),
            "if-match": tags,
            "if-none-match": tags,
            "if-modified-since": dates,
            "if-unmodified-since": dates,
        },
    )
    sizes = st.one_of(st.integers(0, 2_000), st.integers(0, 2**63))
    moments = st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    return st.tuples(headers, sizes, moments | st.just(LAST_MODIFIED))


def _inside(chosen: ByteRange | None, size: int) -> None:
    if chosen is None:
        return
    if not 0 <= chosen.start <= chosen.end < size or chosen.size != size:
        raise Finding(f"range {chosen} outside a {size}-byte file")


def check(case: Case) -> None:
    headers, size, last_modified = case
    with contextlib.suppress(PreconditionFailedError):
        evaluate_preconditions(headers, ETAG, last_modified)
    range_applies(headers, ETAG, last_modified)
    for name in ("if-match", "if-none-match"):
        if name in headers:
            parse_etags(headers[name])
    with contextlib.suppress(RangeNotSatisfiableError):
        _inside(parse_range(headers.get("range"), size), size)


def size(case: Case) -> int:
    return sum(len(value) for value in case[0].values())


def _headers(name: str, value: str) -> Case:
    return {name: value}, 10**9, LAST_MODIFIED


def _repeat(unit: str, n: int) -> str:
    return unit * max(1, n // len(unit))


SHAPES: dict[str, Any] = {
    "Range: one long number": lambda n: _headers("range", "bytes=" + "1" * (n - 7) + "-"),
    "Range: many ranges": lambda n: _headers("range", "bytes=" + _repeat("0-1,", n)),
    "Range: blanks": lambda n: _headers("range", "bytes=" + " " * n + "0-"),
    "If-None-Match: many tags": lambda n: _headers("if-none-match", _repeat('"abc", ', n)),
    "If-None-Match: no closing quote": lambda n: _headers("if-none-match", '"' + "a" * n),
    "If-None-Match: quotes, commas": lambda n: _headers("if-none-match", _repeat('",', n)),
    "If-Match: blanks, no comma": lambda n: _headers("if-match", " " * n + "x"),
    "If-Match: W/ runs": lambda n: _headers("if-match", _repeat("W/", n)),
    "If-Modified-Since: words": lambda n: _headers("if-modified-since", _repeat("1 ", n)),
    "If-Range: a long date": lambda n: _headers("if-range", "Mon, 01 Jan 2024 " + "0" * n),
}

TARGET = Target(
    name="conditions",
    about="Range / If-* headers (device.conditions)",
    strategy=strategy,
    check=check,
    size=size,
    shapes=SHAPES,
)
