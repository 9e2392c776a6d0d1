"""RFC 9110 ranges and conditional requests: what a player resuming a download, or a cache
revalidating, gets back. Checked against a small independent model of the RFC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from smart_stream.device.conditions import (
    ByteRange,
    Outcome,
    evaluate_preconditions,
    http_date,
    parse_etags,
    parse_range,
    select_range,
)
from smart_stream.domain.errors import PreconditionFailedError, RangeNotSatisfiableError

ETAG = '"5d41402abc4b2a76b9719d911017c592"'
LAST_MODIFIED = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)

sizes = st.integers(min_value=0, max_value=10**12)
positions = st.integers(min_value=0, max_value=10**12 + 10)
ows = st.sampled_from(["", " ", "  ", "\t", " \t "])


# --- an independent model of a single byte-range-spec (RFC 9110 14.1.1 / 14.1.2) -------------


class Unsatisfiable(Exception):
    pass


def model_range(first: int | None, last: int | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive, None for "ignore the header", Unsatisfiable for 416."""
    if first is None:
        assert last is not None
        if last == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - last), size - 1
    if last is not None and last < first:
        return None  # invalid range-spec: the whole header is ignored
    if first >= size:
        raise Unsatisfiable
    return first, size - 1 if last is None else min(last, size - 1)


def spec_text(first: int | None, last: int | None) -> str:
    return f"{'' if first is None else first}-{'' if last is None else last}"


specs = st.one_of(
    st.tuples(positions, positions),  # bytes=a-b
    st.tuples(positions, st.none()),  # bytes=a-
    st.tuples(st.none(), positions),  # bytes=-n
)


def check_against_model(header: str, first: int | None, last: int | None, size: int) -> None:
    try:
        expected = model_range(first, last, size)
    except Unsatisfiable:
        with pytest.raises(RangeNotSatisfiableError) as caught:
            parse_range(header, size)
        assert caught.value.size == size
        return
    got = parse_range(header, size)
    if expected is None:
        assert got is None
        return
    assert got is not None
    assert (got.start, got.end, got.size) == (*expected, size)
    assert 0 <= got.start <= got.end < size
    assert got.length == got.end - got.start + 1
    assert got.content_range == f"bytes {got.start}-{got.end}/{size}"


@given(spec=specs, size=sizes)
@example(spec=(0, 0), size=1)
@example(spec=(0, None), size=0)
@example(spec=(None, 0), size=10)
@example(spec=(None, 1), size=0)
@example(spec=(None, 50), size=10)
@example(spec=(10, 20), size=10)
@example(spec=(9, 9), size=10)
@example(spec=(5, 4), size=10)
@example(spec=(5, 4), size=3)
def test_a_single_range_matches_the_model(spec, size):
    """Given any size and any one syntactically valid range, when it is parsed, then the
    answer is what RFC 9110 says: clamped to the end, suffixes longer than the file give the
    whole file, a start at or past the end is 416, last < first ignores the header."""
    first, last = spec
    check_against_model(f"bytes={spec_text(first, last)}", first, last, size)


@given(
    spec=specs,
    size=sizes,
    unit=st.sampled_from(["bytes", "BYTES", "Bytes", "bYtEs"]),
    before=ows,
    after=ows,
    around=ows,
)
def test_the_unit_is_case_insensitive_and_whitespace_around_the_parts_is_allowed(
    spec, size, unit, before, after, around
):
    first, last = spec
    header = f"{around}{unit}{before}={after}{spec_text(first, last)}{around}"
    check_against_model(header, first, last, size)


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-499", 10_000, (0, 499)),
        ("bytes=500-999", 10_000, (500, 999)),
        ("bytes=-500", 10_000, (9500, 9999)),
        ("bytes=9500-", 10_000, (9500, 9999)),
        ("bytes=0-0", 10_000, (0, 0)),
        ("bytes=-1", 10_000, (9999, 9999)),
        ("bytes=0-", 1, (0, 0)),
        ("bytes=0-99999", 10_000, (0, 9999)),
        ("bytes=-99999", 10_000, (0, 9999)),
    ],
)
def test_rfc_examples(header, size, expected):
    got = parse_range(header, size)
    assert got == ByteRange(*expected, size)


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=10000-", 10_000), ("bytes=10000-20000", 10_000), ("bytes=-0", 10_000)],
)
def test_unsatisfiable_ranges_carry_the_size_for_content_range(header, size):
    with pytest.raises(RangeNotSatisfiableError) as caught:
        parse_range(header, size)
    assert caught.value.size == size


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=abc",
        "bytes=1-2-3",
        "bytes=--5",
        "bytes=+1-2",
        "bytes=1 - 2",
        "bytes=0x10-",
        "bytes=1.5-2",
        "items=0-10",
        "bits=0-10",
        "=0-10",
        "0-10",
        "bytes 0-10",
        "bytes=0-1,5-6",
        "bytes=0-1, -5",
        "bytes=0-1,",
        "bytes=" + "9" * 5000 + "-",
        # Digits are ASCII DIGIT only (RFC 5234): other scripts' digits are not numbers here.
        "bytes=\u0661-\u0663",
        "bytes=\uff10-\uff15",
        "bytes=\u0e51\u0e52-",
    ],
)
def test_malformed_or_multiple_ranges_are_ignored(header):
    """Given a Range the server cannot use, the whole file is served (None), never a 416."""
    assert parse_range(header, 10_000) is None


# What a Range header may look like if it is to be honoured at all (deliberately looser than
# the code about whitespace, and stricter about digits: ASCII only).
_LOOSELY_VALID = re.compile(r"\s*bytes\s*=\s*[0-9]*-[0-9]*\s*", re.IGNORECASE)


@given(header=st.text(), size=sizes)
@example(header="bytes=5-", size=3)
@example(header="bytes=\u0967-", size=10)
def test_garbage_never_raises_anything_but_unsatisfiable(header, size):
    """Given any text at all, parse_range answers None, an in-bounds range, or a 416."""
    try:
        got = parse_range(header, size)
    except RangeNotSatisfiableError as exc:
        assert exc.size == size
        assert _LOOSELY_VALID.fullmatch(header)
        return
    if got is not None:
        assert _LOOSELY_VALID.fullmatch(header), header
        assert 0 <= got.start <= got.end < size
        assert got.size == size


@given(header=st.text())
def test_text_without_an_equals_sign_or_a_dash_is_always_ignored(header):
    """ "Usually None": only something shaped like ``bytes=a-b`` can select a range."""
    assume("=" not in header or "-" not in header)
    assert parse_range(header, 1000) is None


# --- If-Range -------------------------------------------------------------------------------


def _headers(**values: str) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in values.items()}


def test_if_range_with_the_current_strong_etag_honours_the_range():
    headers = _headers(range="bytes=10-19", if_range=ETAG)
    assert select_range(headers, 100, ETAG, LAST_MODIFIED) == ByteRange(10, 19, 100)


@pytest.mark.parametrize(
    "if_range",
    [
        f"W/{ETAG}",  # weak validators never match If-Range (strong comparison)
        '"something-else"',
        '"5d41402abc4b2a76b9719d911017c59"',
        "not a date and not a tag",
        http_date(LAST_MODIFIED - timedelta(seconds=1)),
        http_date(LAST_MODIFIED + timedelta(seconds=1)),
    ],
)
def test_if_range_that_does_not_match_sends_the_whole_file(if_range):
    """A player resuming a file that changed must get all of the new one, not a splice."""
    headers = _headers(range="bytes=10-19", if_range=if_range)
    assert select_range(headers, 100, ETAG, LAST_MODIFIED) is None


def test_if_range_with_the_last_modified_date_honours_the_range():
    """The date is compared at HTTP's one-second precision."""
    headers = _headers(range="bytes=-10", if_range=http_date(LAST_MODIFIED))
    assert select_range(headers, 100, ETAG, LAST_MODIFIED) == ByteRange(90, 99, 100)


def test_if_range_mismatch_also_hides_an_unsatisfiable_range():
    """If-Range fails first: the whole (new) file is sent rather than a 416."""
    headers = _headers(range="bytes=500-", if_range='"old"')
    assert select_range(headers, 100, ETAG, LAST_MODIFIED) is None


@given(spec=specs, size=sizes)
def test_select_range_without_if_range_is_parse_range(spec, size):
    first, last = spec
    header = f"bytes={spec_text(first, last)}"
    try:
        expected = parse_range(header, size)
    except RangeNotSatisfiableError:
        with pytest.raises(RangeNotSatisfiableError):
            select_range({"range": header}, size, ETAG, LAST_MODIFIED)
        return
    assert select_range({"range": header}, size, ETAG, LAST_MODIFIED) == expected


def test_no_range_header_means_the_whole_file():
    assert select_range({}, 100, ETAG, LAST_MODIFIED) is None
    assert select_range({"if-range": ETAG}, 100, ETAG, LAST_MODIFIED) is None


# --- entity-tag lists -------------------------------------------------------------------------

# etagc = %x21 / %x23-7E / obs-text (RFC 9110 8.8.3)
etagc = st.characters(
    codec="latin-1", blacklist_characters='"', blacklist_categories=("Cc", "Zs")
).filter(lambda c: c == "!" or "\x23" <= c <= "\x7e" or c >= "\x80")
tags = st.tuples(st.booleans(), st.text(alphabet=etagc, max_size=20).map(lambda s: f'"{s}"'))


@given(members=st.lists(tags, min_size=1, max_size=6), gaps=st.lists(ows, min_size=7))
def test_parse_etags_reads_back_any_list_of_tags(members, gaps):
    header = ",".join(
        f"{gaps[i]}{'W/' if weak else ''}{tag}{gaps[i + 1]}"
        for i, (weak, tag) in enumerate(members)
    )
    assert parse_etags(header) == members


@pytest.mark.parametrize("header", ["*", " * ", "\t*"])
def test_parse_etags_star_is_any(header):
    assert parse_etags(header) is None


def test_parse_etags_skips_malformed_members():
    assert parse_etags('"a", garbage, W/"b", unquoted, "c"') == [
        (False, '"a"'),
        (True, '"b"'),
        (False, '"c"'),
    ]
    assert parse_etags("no tags at all") == []
    assert parse_etags("") == []


@given(st.text())
def test_parse_etags_never_crashes(header):
    result = parse_etags(header)
    assert result is None or all(tag.startswith('"') and tag.endswith('"') for _, tag in result)


# --- conditional GET (RFC 9110 13.2.2) --------------------------------------------------------


@pytest.mark.parametrize(
    "if_none_match",
    [
        "*",
        ETAG,
        f"W/{ETAG}",  # If-None-Match uses the weak comparison
        f'"other", {ETAG}',
        f'"a", "b" , W/{ETAG} ,"c"',
    ],
)
def test_if_none_match_that_matches_is_not_modified(if_none_match):
    headers = {"if-none-match": if_none_match}
    assert evaluate_preconditions(headers, ETAG, LAST_MODIFIED) is Outcome.NOT_MODIFIED


@pytest.mark.parametrize("if_none_match", ['"other"', 'W/"other"', '"a", "b"', "garbage", ""])
def test_if_none_match_that_does_not_match_proceeds(if_none_match):
    headers = {"if-none-match": if_none_match}
    assert evaluate_preconditions(headers, ETAG, LAST_MODIFIED) is Outcome.PROCEED


def test_if_none_match_takes_precedence_over_if_modified_since():
    """A changed etag means a fresh body, even if the date would say "not modified"."""
    headers = {
        "if-none-match": '"other"',
        "if-modified-since": http_date(LAST_MODIFIED + timedelta(days=1)),
    }
    assert evaluate_preconditions(headers, ETAG, LAST_MODIFIED) is Outcome.PROCEED


@pytest.mark.parametrize("if_match", ['"other"', f"W/{ETAG}", '"a", "b"', "garbage"])
def test_if_match_mismatch_fails_the_precondition(if_match):
    """If-Match uses the strong comparison: a weak tag does not match either."""
    with pytest.raises(PreconditionFailedError):
        evaluate_preconditions({"if-match": if_match}, ETAG, LAST_MODIFIED)


@pytest.mark.parametrize("if_match", ["*", ETAG, f'"other", {ETAG}'])
def test_if_match_that_matches_proceeds(if_match):
    assert evaluate_preconditions({"if-match": if_match}, ETAG, LAST_MODIFIED) is Outcome.PROCEED


def test_if_match_is_checked_before_if_none_match():
    headers = {"if-match": '"other"', "if-none-match": "*"}
    with pytest.raises(PreconditionFailedError):
        evaluate_preconditions(headers, ETAG, LAST_MODIFIED)


def test_if_match_takes_precedence_over_if_unmodified_since():
    headers = {
        "if-match": ETAG,
        "if-unmodified-since": http_date(LAST_MODIFIED - timedelta(days=1)),
    }
    assert evaluate_preconditions(headers, ETAG, LAST_MODIFIED) is Outcome.PROCEED


moments = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
second_offsets = st.integers(min_value=-(10**6), max_value=10**6)


def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


@given(last_modified=moments, offset=second_offsets)
@example(last_modified=LAST_MODIFIED, offset=0)
@example(last_modified=LAST_MODIFIED, offset=-1)
def test_if_modified_since_at_second_precision(last_modified, offset):
    """Not modified exactly when the file's last change (to the second) is no later than the
    date the client holds: a copy fetched in the same second is current."""
    since = _floor_second(last_modified) + timedelta(seconds=offset)
    headers = {"if-modified-since": http_date(since)}
    expected = Outcome.NOT_MODIFIED if offset >= 0 else Outcome.PROCEED
    assert evaluate_preconditions(headers, ETAG, last_modified) is expected


@given(last_modified=moments, offset=second_offsets)
@example(last_modified=LAST_MODIFIED, offset=0)
@example(last_modified=LAST_MODIFIED, offset=-1)
def test_if_unmodified_since_at_second_precision(last_modified, offset):
    since = _floor_second(last_modified) + timedelta(seconds=offset)
    headers = {"if-unmodified-since": http_date(since)}
    if offset >= 0:
        assert evaluate_preconditions(headers, ETAG, last_modified) is Outcome.PROCEED
    else:
        with pytest.raises(PreconditionFailedError):
            evaluate_preconditions(headers, ETAG, last_modified)


@pytest.mark.parametrize("name", ["if-modified-since", "if-unmodified-since"])
@pytest.mark.parametrize("value", ["yesterday", "", "Mon, 99 Foo 2026 00:00:00 GMT", "0"])
def test_invalid_dates_are_ignored(name, value):
    assert evaluate_preconditions({name: value}, ETAG, LAST_MODIFIED) is Outcome.PROCEED


def test_no_conditions_proceed():
    assert evaluate_preconditions({}, ETAG, LAST_MODIFIED) is Outcome.PROCEED


@given(st.dictionaries(st.sampled_from(["if-match", "if-none-match"]), st.text()))
def test_any_etag_header_values_end_in_an_outcome_or_412(headers):
    try:
        outcome = evaluate_preconditions(headers, ETAG, LAST_MODIFIED)
    except PreconditionFailedError:
        assert "if-match" in headers
        return
    assert outcome in (Outcome.PROCEED, Outcome.NOT_MODIFIED)
