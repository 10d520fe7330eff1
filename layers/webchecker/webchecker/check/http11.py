"""HTTP/1.1 on the wire for a check: one request per connection, one response read strictly.

A check sends one request with ``Connection: close`` and reads one response, so the
client side of HTTP/1.1 it needs is small: the request's bytes, and a reader for the
response head (status line and headers, at most :data:`MAX_HEAD_BYTES`, informational
1xx responses skipped) and the body (``Content-Length``, ``chunked``, or until the
server closes), which stops at a byte cap. Written for this instead of httpcore and h11:
their general state machines, events and per-request objects cost more CPU per check
than the rest of the check's Python.

What a server may not do, and what it gets: a head that is no HTTP (a bad status line
or header line, conflicting ``Content-Length`` values, a ``Transfer-Encoding`` other than
``chunked``, a head longer than the limit, a broken chunk) raises :class:`ResponseError`,
which the check reports as ``invalid_response``. Reading is linear in the bytes
received, and the reader awaits the connection between two socket reads, so a body of a
million one-byte chunks is parsed while the other checks run and the check's deadline
still applies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

# h11's limit on an incomplete event, which httpcore used before this module.
MAX_HEAD_BYTES = 100 * 1024
_MAX_CHUNK_LINE = 4 * 1024  # a chunk size with extensions; the trailer has its own head limit
_MAX_LENGTH_DIGITS = 18  # a Content-Length beyond this is no body a check reads to the end

_BLANK_LINE = re.compile(rb"\n\r?\n")  # bare LF line ends are accepted, as h11 does
_STATUS_LINE = re.compile(rb"HTTP/[0-9]\.[0-9] ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?")
_HEADER_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\t\x20-\x7e\x80-\xff]*)")
_TARGET = re.compile(r"[\x21-\x7e]+")  # no spaces, controls or non-ASCII on the request line
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_NO_BODY_STATUSES = frozenset({204, 304})


class ResponseError(Exception):
    """The server's bytes are not a valid HTTP/1.1 response (``invalid_response``)."""


class RequestError(Exception):
    """The request cannot be written as valid HTTP/1.1 (the check fails with ``other``)."""


class Source(Protocol):
    """Where the response comes from (:class:`webchecker.check.connection.Connection`)."""

    async def recv(self) -> bytes: ...


def encode_request(
    method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes | None
) -> bytes:
    """The request's bytes; header names and values are validated by the site model,
    the target here (a redirect's Location reaches it unchecked)."""
    if not _TARGET.fullmatch(target):
        raise RequestError(f"invalid request target {_shown(target.encode('utf-8', 'replace'))}")
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if body is None else head + body


@dataclass(slots=True)
class Response:
    """A response's status and headers (names in lower case, values as sent)."""

    status: int
    headers: list[tuple[bytes, bytes]]

    def header(self, name: bytes) -> str | None:
        """The first value of header ``name`` (lower case), decoded as Latin-1."""
        for key, value in self.headers:
            if key == name:
                return value.decode("latin-1")
        return None

    def values(self, name: bytes) -> list[bytes]:
        """Every value of header ``name`` (lower case), comma-separated lists split."""
        return [
            item.strip(b" \t")
            for key, value in self.headers
            if key == name
            for item in value.split(b",")
            if item.strip(b" \t")
        ]


@dataclass(slots=True)
class Body:
    """The body as read: at most ``limit`` bytes kept (or only counted)."""

    limit: int
    keep: bool
    chunks: list[bytes]
    size: int = 0
    too_large: bool = False  # the body went on past the limit

    def add(self, piece: bytes) -> bool:
        """Takes ``piece``; False once the limit is reached and more came."""
        room = self.limit - self.size
        if len(piece) > room:
            if self.keep and room:
                self.chunks.append(piece[:room])
            self.size = self.limit
            self.too_large = True
            return False
        if self.keep:
            self.chunks.append(piece)
        self.size += len(piece)
        return True

    def data(self) -> bytes:
        return b"".join(self.chunks)


_NONE, _LENGTH, _CHUNKED, _CLOSE = range(4)


class ResponseReader:
    """Reads one response from ``source``: :meth:`read_head`, then :meth:`read_body`."""

    __slots__ = ("_buffer", "_framing", "_length", "_source")

    def __init__(self, source: Source) -> None:
        self._source = source
        self._buffer = bytearray()
        self._framing = _NONE
        self._length = 0

    async def _more(self, what: str) -> None:
        data = await self._source.recv()
        if not data:
            raise ResponseError(f"the server closed the connection in the middle of {what}")
        self._buffer += data

    async def read_head(self, method: str) -> Response:
        """The final response's status and headers (1xx other than 101 are skipped)."""
        while True:
            response = _parse_head(await self._read_head_bytes())
            status = response.status
            if status >= 200 or status == 101:
                break
        if method == "HEAD" or status < 200 or status in _NO_BODY_STATUSES:
            self._framing = _NONE
        elif transfer := response.values(b"transfer-encoding"):
            if [item.lower() for item in transfer] != [b"chunked"]:
                raise ResponseError(
                    f"unsupported Transfer-Encoding {_shown(b', '.join(transfer))} "
                    "(only chunked is)"
                )
            self._framing = _CHUNKED
        elif lengths := response.values(b"content-length"):
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                raise ResponseError(f"invalid Content-Length {_shown(b', '.join(lengths))}")
            if len(lengths[0]) > _MAX_LENGTH_DIGITS:
                raise ResponseError(f"Content-Length too large: {_shown(lengths[0])}")
            self._framing = _LENGTH
            self._length = int(lengths[0])
        else:
            self._framing = _CLOSE
        return response

    async def _read_head_bytes(self) -> bytes:
        buffer = self._buffer
        scanned = 0
        while (end := _BLANK_LINE.search(buffer, max(0, scanned - 2))) is None:
            if len(buffer) > MAX_HEAD_BYTES:
                raise ResponseError(
                    f"response head longer than {MAX_HEAD_BYTES // 1024} KB without its end"
                )
            scanned = len(buffer)
            data = await self._source.recv()
            if not data:
                raise ResponseError(
                    "the server closed the connection in the middle of the response head"
                    if buffer.strip()
                    else "the server closed the connection without sending a response"
                )
            buffer += data
        head = bytes(buffer[: end.start()])
        del buffer[: end.end()]
        if len(head) > MAX_HEAD_BYTES:
            raise ResponseError(f"response head longer than {MAX_HEAD_BYTES // 1024} KB")
        return head

    async def read_body(self, limit: int, *, keep: bool) -> Body:
        """Reads the body up to ``limit`` bytes (kept only with ``keep``), then stops."""
        body = Body(limit=limit, keep=keep, chunks=[])
        if self._framing == _LENGTH:
            await self._read_length(body, self._length)
        elif self._framing == _CHUNKED:
            await self._read_chunked(body)
        elif self._framing == _CLOSE:
            piece = bytes(self._buffer)
            self._buffer.clear()
            while not piece or body.add(piece):
                piece = await self._source.recv()
                if not piece:  # the server closed: that is the end of this body
                    break
        return body

    async def _read_length(self, body: Body, length: int) -> None:
        remaining = length
        piece = bytes(self._buffer)
        self._buffer.clear()
        while True:
            if len(piece) > remaining:
                piece = piece[:remaining]  # anything after the body is ignored
            remaining -= len(piece)
            if not body.add(piece) or remaining == 0:
                return
            if body.size == body.limit:  # full, and the length says more is coming
                body.too_large = True
                return
            piece = await self._source.recv()
            if not piece:
                raise ResponseError(
                    f"the server closed the connection after {length - remaining} of "
                    f"{length} body bytes"
                )

    async def _read_chunked(self, body: Body) -> None:
        buffer = self._buffer
        start = 0  # where the unread bytes begin; the buffer is trimmed now and then
        while True:
            while (end := buffer.find(b"\n", start)) < 0:
                if len(buffer) - start > _MAX_CHUNK_LINE:
                    raise ResponseError("chunk size line too long")
                await self._more("a chunked body")
            size_text = bytes(buffer[start:end]).split(b";", 1)[0].strip(b" \t\r")
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise ResponseError(f"invalid chunk size {_shown(bytes(buffer[start:end]))}")
            size = int(size_text, 16)
            start = end + 1
            if size == 0:
                return  # the last chunk: trailers, if any, are not needed
            while size:
                if start == len(buffer):
                    buffer.clear()
                    start = 0
                    await self._more("a chunked body")
                piece = bytes(buffer[start : start + size])
                start += len(piece)
                size -= len(piece)
                if not body.add(piece):
                    return
            while True:  # the line end after the chunk's data
                line_end = bytes(buffer[start : start + 2])
                if line_end[:1] == b"\n":
                    start += 1
                    break
                if line_end == b"\r\n":
                    start += 2
                    break
                if line_end not in (b"", b"\r"):
                    raise ResponseError("chunk data not followed by a line end")
                await self._more("a chunked body")
            if start > 65536:
                del buffer[:start]
                start = 0


def _parse_head(head: bytes) -> Response:
    lines = head.split(b"\n")
    status_line = lines[0].rstrip(b"\r")
    match = _STATUS_LINE.fullmatch(status_line)
    if match is None:
        raise ResponseError(f"not an HTTP status line: {_shown(status_line)}")
    headers: list[tuple[bytes, bytes]] = []
    for raw in lines[1:]:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: part of the previous value
            if not headers:
                raise ResponseError(f"continuation line before any header: {_shown(line)}")
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip(b" \t"))
            continue
        field = _HEADER_LINE.fullmatch(line)
        if field is None:
            raise ResponseError(f"invalid header line: {_shown(line)}")
        headers.append((field[1].lower(), field[2].rstrip(b" \t")))
    return Response(int(match[1]), headers)


def _shown(data: bytes, limit: int = 80) -> str:
    text = repr(data)[1:]
    return text if len(text) <= limit else text[: limit - 3] + "..."
