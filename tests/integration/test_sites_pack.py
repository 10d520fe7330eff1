"""`webchecker sites pack`: one-site parameters folded into arrays of at most 4 KB, against
moto. Packing never loses, doubles or changes a site; packed sites stay editable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fixtures.aws import SitesCli, put_parameters, snapshot_parameters
from webchecker.schedule import packing
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.sites import SiteCatalog

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

ROOT = "/webchecker/sites"


def load(client: SSMClient) -> SiteCatalog:
    return SiteStore(SiteStoreSettings(path=ROOT, cache_seconds=0), client=client).load(force=True)


def seed(client: SSMClient, count: int) -> None:
    put_parameters(
        client,
        {
            f"{ROOT}/site-{n:04d}": {
                "url": f"https://example-{n}.com/health",
                **({"interval": 300, "regex": "ok|fine"} if n % 7 == 0 else {}),
            }
            for n in range(count)
        },
    )
    put_parameters(
        client,
        {
            f"{ROOT}/team/array": [{"id": "in-array", "url": "https://array.example.com/"}],
            f"{ROOT}/secret": {"url": "https://secret.example.com/", "headers": {"X-Key": "k"}},
            f"{ROOT}/broken": "{not json",
            f"{ROOT}/zz-duplicate": {"id": "site-0001", "url": "https://other.example.com/"},
        },
        secure=frozenset({f"{ROOT}/secret"}),
    )


def test_packing_keeps_every_site_and_fits_the_standard_tier(
    ssm_client: SSMClient, sites_cli: SitesCli
) -> None:
    seed(ssm_client, 300)
    before = load(ssm_client)

    code, out, _ = sites_cli("pack")

    assert code == 0
    after = load(ssm_client)
    assert sorted(after.sites, key=lambda s: s.id) == sorted(before.sites, key=lambda s: s.id)
    assert len(after.invalid) == len(before.invalid) == 2  # broken, and the duplicate
    stored = snapshot_parameters(ssm_client, ROOT)
    packs = {n: v for n, v in stored.items() if n.startswith(f"{ROOT}/packed/")}
    assert all(
        len(value.encode()) <= packing.STANDARD_VALUE_BYTES for _, value, _ in packs.values()
    )
    assert sum(len(json.loads(value)) for _, value, _ in packs.values()) == 300
    assert f"{ROOT}/site-0000" not in stored  # folded into a pack
    assert stored[f"{ROOT}/secret"][0] == "SecureString"  # kept, still encrypted
    assert f"{ROOT}/team/array" in stored
    assert f"{ROOT}/zz-duplicate" in stored  # an invalid entry is never touched
    assert len(stored) == len(packs) + 4
    assert f"packed 300 parameters into {len(packs)}" in out


def test_a_packed_site_is_still_edited_alone(ssm_client: SSMClient, sites_cli: SitesCli) -> None:
    seed(ssm_client, 40)
    sites_cli("pack")

    code, _, _ = sites_cli("set", "site-0003", "interval=600")
    assert code == 0
    code, _, _ = sites_cli("disable", "site-0004")
    assert code == 0

    sites = {s.id: s for s in load(ssm_client).sites}
    assert sites["site-0003"].interval == 600
    assert sites["site-0004"].enabled is False
    assert sites["site-0005"].enabled is True
    assert len(sites) == 42


def test_dry_run_writes_nothing(ssm_client: SSMClient, sites_cli: SitesCli) -> None:
    seed(ssm_client, 30)
    before = snapshot_parameters(ssm_client, ROOT)
    code, out, _ = sites_cli("pack", "--dry-run")
    assert code == 0
    assert "would pack 30 parameters" in out
    assert snapshot_parameters(ssm_client, ROOT) == before


def test_packing_again_continues_the_numbering_and_packs_only_new_sites(
    ssm_client: SSMClient, sites_cli: SitesCli
) -> None:
    seed(ssm_client, 20)
    sites_cli("pack")
    first = {n for n in snapshot_parameters(ssm_client, ROOT) if "/packed/" in n}
    put_parameters(ssm_client, {f"{ROOT}/late": {"url": "https://late.example.com/"}})

    code, out, _ = sites_cli("pack")

    assert code == 0
    assert "packed 1 parameters into 1" in out
    stored = snapshot_parameters(ssm_client, ROOT)
    new = {n for n in stored if "/packed/" in n} - first
    assert new == {f"{ROOT}/packed/{len(first) + 1:05d}"}
    assert json.loads(stored[new.pop()][1]) == [{"url": "https://late.example.com/", "id": "late"}]


def test_a_site_edited_while_packing_keeps_the_edit_and_appears_once(
    ssm_client: SSMClient,
) -> None:
    seed(ssm_client, 10)
    store = SiteStore(SiteStoreSettings(path=ROOT, cache_seconds=0), client=ssm_client)
    listing = packing.read_listing(ssm_client, ROOT)
    plan = packing.plan_packs(listing, ROOT)
    put_parameters(
        ssm_client, {f"{ROOT}/site-0002": {"url": "https://edited.example.com/", "interval": 120}}
    )

    outcome = packing.apply_plan(store, plan, listing)

    assert outcome.conflicts == (f"{ROOT}/site-0002",)
    catalog = load(ssm_client)
    edited = [s for s in catalog.sites if s.id == "site-0002"]
    assert len(edited) == 1
    assert edited[0].url == "https://edited.example.com/"
    assert not any("duplicate 'site-0002'" in e.reason for e in catalog.invalid)


# -- the plan alone (no AWS) -------------------------------------------------------------------

urls = st.from_regex(r"https://[a-z]{1,40}\.example\.com/[a-z0-9/]{0,200}", fullmatch=True)


@given(
    st.lists(st.tuples(st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True), urls), max_size=60),
    st.integers(300, 4096),
)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_pack_fits_and_every_single_is_packed_once_or_kept(
    entries: list[tuple[str, str]], max_bytes: int
) -> None:
    listing = {
        f"{ROOT}/{site_id}": packing.StoredValue(value=json.dumps({"url": url}))
        for site_id, url in entries
    }
    plan = packing.plan_packs(listing, ROOT, max_bytes=max_bytes)
    for pack in plan.packs:
        assert len(pack.value.encode()) <= max_bytes
        assert [e["id"] for e in json.loads(pack.value)] == list(pack.site_ids)
    packed = [source for pack in plan.packs for source in pack.sources]
    kept = [name for name, _ in plan.kept]
    assert len(packed) == len(set(packed))
    assert sorted(packed + kept) == sorted(listing)


def test_import_packed_writes_new_sites_into_packs_and_updates_others_in_place(
    ssm_client: SSMClient, sites_cli: SitesCli, tmp_path: Path
) -> None:
    put_parameters(ssm_client, {f"{ROOT}/old": {"url": "https://old.example.com/"}})
    big = {"id": "big", "url": "https://big.example.com/", "body": "x" * 5000}
    entries = [
        {"id": f"new-{n:03d}", "url": f"https://new-{n}.example.com/"} for n in range(120)
    ] + [{"id": "old", "url": "https://old.example.com/", "interval": 300}, big]
    source = tmp_path / "sites.json"
    source.write_text(json.dumps(entries))

    code, out, _ = sites_cli("import", "--packed", str(source))

    assert code == 0, out
    assert "imported 122 sites: 121 added, 1 updated, 0 unchanged" in out
    stored = snapshot_parameters(ssm_client, ROOT)
    packs = [n for n in stored if n.startswith(f"{ROOT}/packed/")]
    assert 1 < len(packs) < 10
    assert f"{ROOT}/new-000" not in stored
    assert f"{ROOT}/big" in stored  # larger than a pack: its own parameter
    sites = {s.id: s for s in load(ssm_client).sites}
    assert len(sites) == 122
    assert sites["old"].interval == 300
    assert load(ssm_client).invalid == ()
