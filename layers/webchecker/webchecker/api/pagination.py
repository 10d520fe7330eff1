"""Opaque cursors: the position after the last item of a page, base64url of a JSON list.

A cursor is only a position (keyset pagination): pages stay consistent while new rows
arrive, and a query with a cursor costs the same as the first page. A cursor that does not
decode is a 422 naming ``cursor``, never a server error.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from webchecker.exceptions import InvalidRequest

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_CURSOR = 512


def encode_cursor(*position: Any) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> list[Any]:
    """The position in ``cursor``; each item must be of the matching type in ``types``."""
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw.decode())
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("is not a cursor this API gave out", field="cursor") from None
    if (
        not isinstance(position, list)
        or len(position) != len(types)
        or not all(isinstance(item, kind) for item, kind in zip(position, types, strict=True))
    ):
        raise InvalidRequest("is not a cursor this API gave out", field="cursor")
    return position
