"""Sites packed into array parameters, so that 100,000 sites fit Parameter Store's quotas.

One parameter per site is the easiest to edit, but the standard tier holds at most 10,000
parameters per account and Region, and ``GetParametersByPath`` returns 10 per call under
a default throughput of 40 calls per second shared with ``GetParameter(s)``: 10,000 sites
cost the scheduler 1,000 calls per refresh. DESIGN.md lets a parameter hold an array of
site objects; packed into standard-tier values (at most 4 KB), a typical site (id, url and
a few fields) takes 60-150 bytes, so 100,000 sites fit in 2,000-3,000 parameters, read in
200-300 calls.

:func:`plan_packs` is pure: from the parameters as read (value and type) it decides which
single-site parameters go into which pack. Only plain ``String`` parameters holding one
valid site are packed (a ``SecureString`` keeps its encryption, an existing array stays as
it is), each site object as it was written (defaults are not filled in, to keep packs
small), packs in site-id order, named ``<path>/packed/<NNNNN>`` after the highest existing
pack. Editing keeps working: ``webchecker sites set/enable/disable/remove`` edit one element
of a pack, and a pack is one JSON array in the console.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from webchecker.exceptions import SiteStoreError
from webchecker.schedule.catalog import SiteStore
from webchecker.sites import load_sites

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

#: Parameter Store's standard tier: a value holds at most 4 KB.
STANDARD_VALUE_BYTES = 4096
PACK_FOLDER = "packed"


@dataclass(frozen=True, kw_only=True)
class StoredValue:
    """One parameter as listed: its value (``None`` for an undecrypted SecureString)."""

    value: str | None
    secure: bool = False


@dataclass(frozen=True, kw_only=True)
class Pack:
    name: str
    site_ids: tuple[str, ...]
    sources: tuple[str, ...]  # the single-site parameters folded into this pack
    value: str


@dataclass(frozen=True, kw_only=True)
class PackPlan:
    packs: tuple[Pack, ...]
    #: single-site parameters not packed, with the reason (reported, left as they are)
    kept: tuple[tuple[str, str], ...]


def encode_pack(entries: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(entries), separators=(",", ":"), ensure_ascii=False)


def plan_packs(
    parameters: Mapping[str, StoredValue],
    path: str,
    *,
    max_bytes: int = STANDARD_VALUE_BYTES,
) -> PackPlan:
    """Which single-site parameters go into which new pack (nothing is written here)."""
    prefix = path.rstrip("/")
    pack_pattern = re.compile(re.escape(f"{prefix}/{PACK_FOLDER}/") + r"(\d+)")
    # The owner of an id is its first parameter by name, as in load_sites.
    owner: dict[str, str] = {}
    for name in sorted(parameters):
        value = parameters[name].value
        if value is not None:
            for site in load_sites({name: value}).sites:
                owner.setdefault(site.id, name)
    highest = max(
        (int(m.group(1)) for n in parameters if (m := pack_pattern.fullmatch(n)) is not None),
        default=0,
    )
    candidates: list[tuple[str, str, bytes, dict[str, Any]]] = []  # id, name, encoded, raw
    kept: list[tuple[str, str]] = []
    for name in sorted(parameters):
        stored = parameters[name]
        if pack_pattern.fullmatch(name):
            continue
        if stored.secure or stored.value is None:
            kept.append((name, "SecureString: kept on its own, encrypted"))
            continue
        try:
            value = json.loads(stored.value)
        except (ValueError, RecursionError):
            kept.append((name, "not valid JSON"))
            continue
        if not isinstance(value, dict):
            continue  # already an array: nothing to gain
        raw = dict(value)
        raw.setdefault("id", name.rsplit("/", 1)[-1])
        site_id = raw["id"]
        if not isinstance(site_id, str) or owner.get(site_id) != name:
            kept.append((name, "not a valid site, or a duplicate id"))
            continue
        encoded = json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(encoded) + 2 > max_bytes:
            kept.append((name, f"{len(encoded)} bytes: larger than a pack"))
            continue
        candidates.append((site_id, name, encoded, raw))
    candidates.sort(key=lambda item: item[0])

    packs: list[Pack] = []
    group: list[tuple[str, str, bytes, dict[str, Any]]] = []
    size = 2  # "[" and "]"

    def close() -> None:
        if group:
            number = highest + len(packs) + 1
            packs.append(
                Pack(
                    name=f"{prefix}/{PACK_FOLDER}/{number:05d}",
                    site_ids=tuple(item[0] for item in group),
                    sources=tuple(item[1] for item in group),
                    value=encode_pack([item[3] for item in group]),
                )
            )
        group.clear()

    for item in candidates:
        extra = len(item[2]) + (1 if group else 0)
        if size + extra > max_bytes:
            close()
            size, extra = 2, len(item[2])
        group.append(item)
        size += extra
    close()
    return PackPlan(packs=tuple(packs), kept=tuple(kept))


# -- reading and writing (the CLI) -----------------------------------------------------------


def read_listing(client: SSMClient, path: str) -> dict[str, StoredValue]:
    """Every parameter under ``path`` with its type; SecureString values are not decrypted."""
    listing: dict[str, StoredValue] = {}
    pages = client.get_paginator("get_parameters_by_path").paginate(
        Path=path, Recursive=True, WithDecryption=False
    )
    try:
        for page in pages:
            for parameter in page.get("Parameters", []):
                secure = parameter.get("Type") == "SecureString"
                listing[parameter["Name"]] = StoredValue(
                    value=None if secure else parameter.get("Value", ""), secure=secure
                )
    except (ClientError, BotoCoreError) as error:
        raise SiteStoreError(f"cannot read {path}: {error}") from error
    return listing


@dataclass(frozen=True, kw_only=True)
class PackOutcome:
    packs: int
    packed: int
    conflicts: tuple[str, ...]  # edited while packing: left as they are, not in any pack


def apply_plan(store: SiteStore, plan: PackPlan, listing: Mapping[str, StoredValue]) -> PackOutcome:
    """Writes the packs, then deletes the parameters they replace.

    A source edited since it was read is not deleted: its site is taken out of the pack
    again (the edit wins), so no site is lost or doubled.
    """
    conflicts: list[str] = []
    packed = 0
    for pack in plan.packs:
        store.create(pack.name, pack.value, secure=False)
        dropped: set[str] = set()
        for site_id, source in zip(pack.site_ids, pack.sources, strict=True):
            current = store.get(source)
            if current is None or current.value != listing[source].value:
                conflicts.append(source)
                dropped.add(site_id)
                continue
            try:
                store.delete(current)
            except SiteStoreError:
                conflicts.append(source)
                dropped.add(site_id)
                continue
            packed += 1
        if dropped:
            written = store.get(pack.name)
            assert written is not None
            remaining = [e for e in json.loads(written.value) if e.get("id") not in dropped]
            if remaining:
                store.update(written, encode_pack(remaining), secure=False)
            else:
                store.delete(written)
    return PackOutcome(packs=len(plan.packs), packed=packed, conflicts=tuple(conflicts))
