"""The checker's HTTP/1.1 response reader on byte streams cut anywhere: framing, the cap,
and every malformed response a server can send (a ResponseError, never another error)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webchecker.check.http11 import (
    MAX_HEAD_BYTES,
    Body,
    RequestError,
    Response,
    ResponseError,
    ResponseReader,
    encode_request,
)


class Pieces:
    """A connection that delivers ``pieces`` one per read, then the end of the stream."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = list(pieces)
        self.reads = 0

    async def recv(self) -> bytes:
        self.reads += 1
        return self.pieces.pop(0) if self.pieces else b""


def cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """``data`` in pieces of the given sizes (cycled), none empty."""
    pieces, start, index = [], 0, 0
    while start < len(data):
        size = max(1, sizes[index % len(sizes)]) if sizes else len(data)
        pieces.append(data[start : start + size])
        start += size
        index += 1
    return pieces


def read(
    pieces: Sequence[bytes], *, method: str = "GET", limit: int = 1 << 20, keep: bool = True
) -> tuple[Response, Body]:
    async def go() -> tuple[Response, Body]:
        reader = ResponseReader(Pieces(pieces))
        response = await reader.read_head(method)
        return response, await reader.read_body(limit, keep=keep)

    return asyncio.run(go())


def chunked(body: bytes, size: int) -> bytes:
    out = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    return out + b"0\r\n\r\n"


BODY = bytes(range(256)) * 40  # 10,240 bytes, every byte value


def framed(framing: str, chunk_size: int) -> bytes:
    """A 200 response carrying BODY with Content-Length, chunked, or until the close."""
    if framing == "length":
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
    if framing == "chunked":
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(BODY, chunk_size)
    return b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + BODY


@given(st.lists(st.integers(1, 700), max_size=8), st.sampled_from(["length", "chunked", "close"]))
def test_every_framing_reads_the_same_body_however_the_bytes_are_cut(
    sizes: list[int], framing: str
) -> None:
    response, body = read(cut(framed(framing, 333), sizes))
    assert response.status == 200
    assert (body.data(), body.size, body.too_large) == (BODY, len(BODY), False)


@given(st.integers(0, len(BODY) + 5), st.sampled_from(["length", "chunked", "close"]))
def test_the_body_stops_at_the_limit_and_says_whether_more_came(limit: int, framing: str) -> None:
    wire = framed(framing, 1000)
    _, body = read(cut(wire, [4096]), limit=limit)
    assert body.data() == BODY[:limit]
    assert body.size == min(limit, len(BODY))
    assert body.too_large is (limit < len(BODY))
    _, counted = read(cut(wire, [4096]), limit=limit, keep=False)
    assert (counted.data(), counted.size, counted.too_large) == (b"", body.size, body.too_large)


def test_reading_stops_at_the_limit_without_waiting_for_the_rest() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
    connection = Pieces([head] + [b"x" * 100] * 50)
    reader = ResponseReader(connection)

    async def go() -> Body:
        await reader.read_head("GET")
        return await reader.read_body(250, keep=True)

    body = asyncio.run(go())
    assert (body.size, body.too_large) == (250, True)
    assert connection.reads == 4  # the head, then three pieces of 100 bytes


def test_headers_are_parsed_with_folding_bare_line_ends_and_repeats() -> None:
    wire = (
        b"HTTP/1.1 302 Found\n"
        b"Location:   /next  \n"
        b"X-Long: first\n"
        b"\tsecond\n"
        b"Set-Cookie: a=1\r\n"
        b"set-cookie: b=2\r\n"
        b"Content-Length: 0\n\n"
    )
    response, body = read([wire])
    assert response.status == 302
    assert response.header(b"location") == "/next"
    assert response.header(b"x-long") == "first second"
    assert response.header(b"set-cookie") == "a=1"
    assert response.values(b"set-cookie") == [b"a=1", b"b=2"]
    assert response.header(b"missing") is None
    assert body.size == 0


def test_informational_responses_are_skipped_and_101_is_final() -> None:
    wire = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    response, body = read(cut(wire, [7]))
    assert (response.status, body.data()) == (200, b"ok")
    switching, _ = read([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nbinary"])
    assert switching.status == 101


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304), ("HEAD", 404)]
)
def test_no_body_is_read_where_http_says_there_is_none(method: str, status: int) -> None:
    wire = b"HTTP/1.1 %d X\r\nContent-Length: 50\r\n\r\n" % status
    response, body = read([wire], method=method)  # nothing follows: reading would fail
    assert (response.status, body.size, body.too_large) == (status, 0, False)


def test_equal_repeated_content_lengths_are_one_length() -> None:
    _, body = read([b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc"])
    assert body.data() == b"abc"


def test_chunk_extensions_and_trailers_are_accepted() -> None:
    wire = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n"
        b"2 \r\nde\r\n"
        b"0\r\nX-Trailer: yes\r\n\r\n"
    )
    _, body = read(cut(wire, [1]))
    assert body.data() == b"abcde"


def test_a_million_one_byte_chunks_are_read_in_linear_time() -> None:
    wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1\r\na\r\n" * 100_000
    _, body = read([*cut(wire + b"0\r\n\r\n", [65536])], limit=50_000)
    assert (body.size, body.too_large) == (50_000, True)


def test_a_head_just_under_the_limit_is_read_and_one_over_it_is_refused() -> None:
    filler = b"X-Filler: " + b"a" * 90 + b"\r\n"
    count = (MAX_HEAD_BYTES - 100) // len(filler)
    head = b"HTTP/1.1 200 OK\r\n" + filler * count + b"Content-Length: 0\r\n\r\n"
    response, _ = read(cut(head, [1000]))
    assert len(response.headers) == count + 1
    too_long = b"HTTP/1.1 200 OK\r\n" + filler * (count * 2) + b"\r\n"
    with pytest.raises(ResponseError, match="longer than 100 KB"):
        read(cut(too_long, [1000]))


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"", "without sending a response"),
        (b"THIS IS NOT HTTP\r\n\r\n", "not an HTTP status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "not an HTTP status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "middle of the response head"),
        (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "invalid header line"),
        (b"HTTP/1.1 200 OK\r\n folded: first\r\n\r\n", "continuation line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n", "too large"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "after 3 of 10 body bytes"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", "line end"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "chunked body"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 5000, "too long"),
    ],
)
def test_malformed_responses_are_response_errors(wire: bytes, message: str) -> None:
    with pytest.raises(ResponseError, match=message):
        read(cut(wire, [3]))


def test_the_request_is_one_block_of_bytes_and_a_bad_target_is_refused() -> None:
    request = encode_request("POST", "/a?b=1", [("Host", "example.com"), ("X-Y", "z")], b"{}")
    assert request == b"POST /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Y: z\r\n\r\n{}"
    assert encode_request("GET", "/", [], None) == b"GET / HTTP/1.1\r\n\r\n"
    for target in ("/a b", "/a\r\nX: y", ""):
        with pytest.raises(RequestError, match="invalid request target"):
            encode_request("GET", target, [], None)
