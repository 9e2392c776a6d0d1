"""The upload route's multipart parser (``smart_stream.http.multipart.parse_upload``): a
``multipart/form-data`` body as browsers send it, and bodies cut, garbled or built to hurt.

It may raise only ``BadRequestError`` (400) and ``UnsupportedMediaTypeError`` (415); a file
it returns must have a name and hold as many bytes as it says.
"""

from __future__ import annotations

import logging

from hypothesis import strategies as st

from bench.fuzz.engine import Finding, Target
from smart_stream.domain.errors import BadRequestError, UnsupportedMediaTypeError
from smart_stream.http.multipart import parse_upload

BOUNDARY = "----fuzzBoundary7MA4YWxkTrZu0gW"
#: Stand-ins replaced once a case's boundary is drawn: that boundary, and all of it but its
#: last character (a delimiter that almost matches).
SAME = "\x00same-boundary\x00"
NEAR = b"\x00near-boundary\x00"

#: A case: the Content-Type header and the body.
Case = tuple[str, bytes]

_token = st.text(st.characters(codec="ascii", exclude_characters='"\r\n'), max_size=12)


def _boundary() -> st.SearchStrategy[str]:
    return st.one_of(
        st.just(BOUNDARY),
        st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=70),
        st.text(st.characters(codec="latin-1"), max_size=20),
        st.sampled_from(["", "-", "--", "\r\n", '"', "a" * 200]),
    )


def _content_type(boundary: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    kind = st.sampled_from(
        ["multipart/form-data", "Multipart/Form-Data", "multipart/form-datax", "text/plain"]
    )
    param = st.one_of(
        st.builds(lambda b: f"boundary={b}", boundary),
        st.builds(lambda b: f'boundary="{b}"', boundary),
        st.builds(lambda k, v: f"{k}={v}", _token, _token),
        st.sampled_from(["charset=utf-8", "boundary", "boundary=", ";", "boundary*=utf-8''x"]),
    )
    return st.one_of(
        st.builds(
            lambda k, params, sep: k + "".join(f"{sep}{p}" for p in params),
            kind,
            st.lists(param, max_size=3),
            st.sampled_from(["; ", ";", " ; ", ","]),
        ),
        st.text(max_size=60),
    )


def _disposition() -> st.SearchStrategy[bytes]:
    name = st.one_of(st.sampled_from([b"file", b"filename", b"other", b""]), st.binary(max_size=8))
    filename = st.one_of(
        st.sampled_from([b"story.mp3", b"", b"\xff\xfe.mp3", "bär.mp3".encode(), b'a\\"b']),
        st.binary(max_size=16),
    )
    return st.builds(
        lambda n, f, has_filename, quote: (
            b"Content-Disposition: form-data; name=" + quote + n + quote
            + ((b"; filename=" + quote + f + quote) if has_filename else b"")
        ),
        name,
        filename,
        st.booleans(),
        st.sampled_from([b'"', b"", b"'"]),
    )  # fmt: skip


def _part() -> st.SearchStrategy[bytes]:
    header = st.one_of(
        _disposition(),
        st.sampled_from(
            [
                b"Content-Type: audio/mpeg",
                b"Content-Transfer-Encoding: base64",
                b"Content-Transfer-Encoding: quoted-printable",
                b"Content-Transfer-Encoding: x-unknown",
                b"X-Junk:",
                b"no colon here",
                b"",
            ]
        ),
        st.binary(max_size=30),
    )
    content = st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"--", b"\r\n--", b"\r\n--" + NEAR, b"=\r\n", b"QUJD", b"=4"]),
    )
    return st.builds(
        lambda headers, eol, data: b"".join(h + eol for h in headers) + eol + data,
        st.lists(header, min_size=0, max_size=4),
        st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r"]),
        content,
    )


@st.composite
def _case(
    draw: st.DrawFn,
    boundaries: st.SearchStrategy[str],
    content_types: st.SearchStrategy[str],
    parts: st.SearchStrategy[list[bytes]],
) -> Case:
    """A body of parts between delimiters (the strategies are made once: Hypothesis checks
    each new strategy, which would cost more than the parse)."""
    boundary = draw(boundaries)
    content_type = draw(content_types).replace(SAME, boundary)
    raw = boundary.encode("latin-1", "replace")
    delimiter = b"--" + raw
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\n", b""]))
    body = draw(st.binary(max_size=8))
    body += b"".join(delimiter + eol + p.replace(NEAR, raw[:-1]) + eol for p in draw(parts))
    body += draw(st.sampled_from([delimiter + b"--\r\n", delimiter + b"--", delimiter, b""]))
    body += draw(st.binary(max_size=8))
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return content_type, body


def strategy() -> st.SearchStrategy[Case]:
    boundaries = _boundary()
    content_types = st.one_of(
        st.just(f"multipart/form-data; boundary={SAME}"),
        _content_type(st.one_of(st.just(SAME), boundaries)),
    )
    parts = st.lists(_part(), max_size=4)
    raw = st.tuples(_content_type(boundaries), st.binary(max_size=300))
    body = _case(boundaries, content_types, parts)
    return st.one_of(body, body, body, raw)


def check(case: Case) -> None:
    content_type, body = case
    try:
        upload = parse_upload(content_type, body)
    except (BadRequestError, UnsupportedMediaTypeError):
        return
    if not upload.filename:
        raise Finding("a file without a name")
    data = upload.source.read()
    if len(data) != upload.size:
        raise Finding(f"size says {upload.size}, the file holds {len(data)} bytes")


def size(case: Case) -> int:
    return len(case[1])


_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
_HEAD = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n\r\n'
_TAIL = f"\r\n--{BOUNDARY}--\r\n"


def _one_file(content: bytes) -> Case:
    return _TYPE, _HEAD.encode() + content + _TAIL.encode()


def _fill(unit: bytes, n: int) -> bytes:
    return unit * max(1, n // len(unit))


def _many_parts(n: int) -> Case:
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n'.encode()
    return _TYPE, _fill(part, n) + _HEAD.encode() + b"x" + _TAIL.encode()


def _long_header(n: int) -> Case:
    head = f"--{BOUNDARY}\r\nX-Long: ".encode() + _fill(b"a", n) + b"\r\n"
    return _TYPE, head + _HEAD[len(BOUNDARY) + 4 :].encode() + b"x" + _TAIL.encode()


SHAPES = {
    "a file of audio-like bytes": lambda n: _one_file(_fill(b"\xff\xfb\x90\x00", n)),
    "a file of near-boundaries": lambda n: _one_file(_fill(f"\r\n--{BOUNDARY[:-1]}".encode(), n)),
    "a file of CR LF": lambda n: _one_file(_fill(b"\r\n", n)),
    "a file of dashes": lambda n: _one_file(_fill(b"-", n)),
    "many small fields": _many_parts,
    "one long header": _long_header,
}


def quiet() -> None:
    """python_multipart logs an error for each malformed body: thousands of lines here."""
    logging.getLogger("python_multipart").setLevel(logging.CRITICAL)


TARGET = Target(
    name="multipart",
    about="multipart/form-data uploads (http.multipart.parse_upload)",
    strategy=strategy,
    check=check,
    size=size,
    shapes=SHAPES,
    prepare=quiet,
)
