"""SiteStore.load reuses the validated catalog while the parameters are unchanged, and
never serves a stale one after a change (moto)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.fixtures.aws import put_parameters
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

ROOT = "/webchecker/sites"


def test_unchanged_parameters_give_the_same_catalog_object(ssm_client: SSMClient) -> None:
    put_parameters(ssm_client, {f"{ROOT}/a": {"url": "https://a.example.com/"}})
    store = SiteStore(SiteStoreSettings(path=ROOT, cache_seconds=0), client=ssm_client)
    first = store.load()
    again = store.load(force=True)  # read again: same values
    assert again is first
    assert [s.id for s in again.sites] == ["a"]


def test_a_change_is_seen_at_the_next_read(ssm_client: SSMClient) -> None:
    put_parameters(ssm_client, {f"{ROOT}/a": {"url": "https://a.example.com/"}})
    store = SiteStore(SiteStoreSettings(path=ROOT, cache_seconds=0), client=ssm_client)
    first = store.load()
    put_parameters(
        ssm_client,
        {
            f"{ROOT}/a": {"url": "https://a.example.com/", "interval": 300},
            f"{ROOT}/b": "{broken",
        },
    )
    changed = store.load(force=True)
    assert changed is not first
    assert [(s.id, s.interval) for s in changed.sites] == [("a", 300)]
    assert len(changed.invalid) == 1
    assert [(s.id, s.interval) for s in first.sites] == [("a", 60)]  # never mutated
