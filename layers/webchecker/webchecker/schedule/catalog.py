"""The site list in SSM Parameter Store: read it (scheduler, CLI) and edit it (CLI).

Every parameter under ``SITES_PATH`` (searched recursively) holds one site object or an
array of them. Reading goes through Powertools Parameters (paginated GetParametersByPath,
SecureString decrypted, cached per container for ``SITES_CACHE_SECONDS``); the values are
validated by ``webchecker.sites.load_sites``, the same model every writer uses.

Writing keeps one parameter per site by default (``SITES_PATH/<id>``), so two people
editing different sites never touch the same parameter. Parameter Store has no conditional
write, so an update reads the version first and checks afterwards that its write was the
very next version; if someone else wrote in between, the edit is reported as a conflict.
The CLI (``webchecker sites``) and the REST API edit through the same ``SiteEntry``
read-modify-write here, so both keep array parameters, SecureString and versions alike.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

from webchecker.config import env_int, env_str
from webchecker.exceptions import ConfigurationError, SiteConflict, SiteError, SiteStoreError
from webchecker.sites import SITE_ID_PATTERN, Site, SiteCatalog, load_sites

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_ssm.type_defs import ParameterTypeDef

DEFAULT_SITES_PATH = "/webchecker/sites"
# Powertools' own default; the scheduler runs every minute, so edits apply within 5 minutes
# while a container reads Parameter Store at most once per 5 minutes (its API is throttled).
DEFAULT_CACHE_SECONDS = 300
# Intelligent-Tiering stores up to 8 KB (the Advanced tier's limit); larger values are refused.
MAX_VALUE_BYTES = 8192
# Throttling is the usual SSM failure under load: let botocore back off and retry.
_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})


@dataclass(frozen=True, kw_only=True)
class SiteStoreSettings:
    """Where the sites live and how long a read is reused."""

    path: str = DEFAULT_SITES_PATH
    cache_seconds: int = DEFAULT_CACHE_SECONDS

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or self.path != self.path.strip():
            raise ConfigurationError(f"SITES_PATH={self.path!r}: must start with '/'")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SiteStoreSettings:
        path = env_str("SITES_PATH", DEFAULT_SITES_PATH, env)
        return cls(
            path=path if path == "/" else path.rstrip("/"),
            cache_seconds=env_int("SITES_CACHE_SECONDS", DEFAULT_CACHE_SECONDS, env, minimum=0),
        )


@dataclass(frozen=True, kw_only=True)
class StoredParameter:
    """One parameter as read for an edit: its value, type and version."""

    name: str
    value: str
    secure: bool
    version: int

    @classmethod
    def from_api(cls, name: str, found: ParameterTypeDef) -> StoredParameter:
        """The parameter ``name`` as GetParameter(s) returned it."""
        return cls(
            name=name,
            value=found.get("Value", ""),
            secure=found.get("Type") == "SecureString",
            version=int(found.get("Version", 0)),
        )


@dataclass(frozen=True, kw_only=True)
class SiteListing:
    """Every valid site, the parameter holding each, and every parameter as read."""

    catalog: SiteCatalog
    where: Mapping[str, str]  # site id -> parameter name
    parameters: Mapping[str, StoredParameter]  # parameter name -> parameter
    by_id: Mapping[str, Site]  # in id order

    def site(self, site_id: str) -> Site | None:
        return self.by_id.get(site_id)

    def parameter_of(self, site_id: str) -> StoredParameter | None:
        name = self.where.get(site_id)
        return None if name is None else self.parameters.get(name)


@dataclass(frozen=True, kw_only=True)
class SiteEntry:
    """One site's object as stored (not defaulted) and where it is: a read-modify-write."""

    parameter: StoredParameter
    value: Any  # the parameter's parsed JSON: one object, or an array holding this one
    index: int | None  # position inside an array parameter

    @property
    def raw(self) -> dict[str, Any]:
        """A copy of the stored object, to change and write back with ``SiteStore.replace``."""
        return dict(self.value if self.index is None else self.value[self.index])

    @property
    def default_id(self) -> str | None:
        """The id a single-object parameter gives a site without one (its last segment)."""
        return self.parameter.name.rsplit("/", 1)[-1] if self.index is None else None

    def replaced(self, raw: Mapping[str, Any]) -> Any:
        """The parameter's new value with this entry replaced by ``raw``."""
        if self.index is None:
            return dict(raw)
        value = list(self.value)
        value[self.index] = dict(raw)
        return value

    def removed(self) -> list[Any] | None:
        """The parameter's new value without this entry; None when nothing would be left."""
        if self.index is None:
            return None
        rest = [item for position, item in enumerate(self.value) if position != self.index]
        return rest or None


def encode_value(value: Any) -> str:
    """A parameter value as written: compact JSON of what was given (defaults not pinned)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def id_from_url(url: str) -> str:
    """A readable default id: the host name, lowercased, in the id alphabet."""
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        host = ""
    candidate = re.sub(r"[^a-z0-9._-]+", "-", host).strip("-._")[:63]
    if not SITE_ID_PATTERN.fullmatch(candidate):
        raise SiteError(f"cannot derive an id from {url!r}; give one", field="id")
    return candidate


def new_ssm_client() -> SSMClient:
    """An SSM client honouring AWS_ENDPOINT_URL / AWS_REGION (boto3 reads them natively)."""
    try:
        client: SSMClient = boto3.client("ssm", config=_BOTO_CONFIG)
    except NoRegionError:
        raise ConfigurationError(
            "no AWS region: set AWS_REGION (for the local stack: source .webchecker/env)"
        ) from None
    return client


class SiteStore:
    """The site parameters under one path. Create once per container and reuse it."""

    def __init__(self, settings: SiteStoreSettings, *, client: SSMClient | None = None) -> None:
        self.settings = settings
        self._client = client if client is not None else new_ssm_client()
        self._provider = SSMProvider(boto3_client=self._client)
        self._lock = threading.Lock()
        self._listing: tuple[float, SiteListing] | None = None
        self._loaded: tuple[dict[str, str], SiteCatalog] | None = None

    @property
    def client(self) -> SSMClient:
        return self._client

    # -- reading ---------------------------------------------------------------------------

    def read(self, *, force: bool = False) -> dict[str, str]:
        """Every parameter under the path: full name -> value (decrypted), cached."""
        try:
            values: Any = self._provider.get_multiple(
                self.settings.path,
                max_age=self.settings.cache_seconds,
                force_fetch=force,
                recursive=True,
                decrypt=True,
            )
        except GetParameterError as error:
            raise SiteStoreError(f"cannot read {self.settings.path}: {error}") from error
        # Powertools returns names relative to the path; reports need the full name.
        prefix = self.settings.path.rstrip("/")
        return {f"{prefix}/{key}": str(value) for key, value in values.items()}

    def load(self, *, force: bool = False) -> SiteCatalog:
        parameters = self.read(force=force)
        # Unchanged values (the usual tick, within the cache age): reuse the validated sites;
        # parsing 100,000 sites again costs seconds of a small Lambda's CPU share.
        if self._loaded is not None and self._loaded[0] == parameters:
            return self._loaded[1]
        catalog = load_sites(parameters)
        self._loaded = (parameters, catalog)
        return catalog

    def locate(self, *, force: bool = True) -> tuple[SiteCatalog, dict[str, str]]:
        """The catalog plus, for every valid site, the parameter holding it."""
        listing = self.listing(force=force)
        return listing.catalog, dict(listing.where)

    def listing(self, *, force: bool = False) -> SiteListing:
        """Every parameter with its type and version, validated; reused for ``cache_seconds``.

        Unlike ``read()`` (Powertools, values only) this keeps each parameter's type and
        version: the API masks SecureString header values and gives versions as ETags.
        """
        with self._lock:
            cached = self._listing
            if not force and cached is not None and time.monotonic() < cached[0]:
                return cached[1]
        listing = self._build_listing(self._fetch_all())
        with self._lock:
            self._listing = (time.monotonic() + self.settings.cache_seconds, listing)
        return listing

    def _fetch_all(self) -> dict[str, StoredParameter]:
        parameters: dict[str, StoredParameter] = {}
        try:
            pages = self._client.get_paginator("get_parameters_by_path").paginate(
                Path=self.settings.path, Recursive=True, WithDecryption=True
            )
            for page in pages:
                for found in page.get("Parameters", []):
                    name = found.get("Name", "")
                    parameters[name] = StoredParameter.from_api(name, found)
        except (ClientError, BotoCoreError) as error:
            raise SiteStoreError(f"cannot read {self.settings.path}: {_describe(error)}") from error
        return parameters

    @staticmethod
    def _build_listing(parameters: Mapping[str, StoredParameter]) -> SiteListing:
        catalog = load_sites({name: p.value for name, p in parameters.items()})
        where: dict[str, str] = {}
        # Same order as load_sites (by name), so the first owner of an id is the kept one.
        for name in sorted(parameters):
            for site in load_sites({name: parameters[name].value}).sites:
                where.setdefault(site.id, name)
        return SiteListing(
            catalog=catalog,
            where={site.id: where[site.id] for site in catalog.sites},
            parameters=dict(parameters),
            by_id={site.id: site for site in sorted(catalog.sites, key=lambda s: s.id)},
        )

    # -- writing (the CLI) -----------------------------------------------------------------

    def parameter_name(self, site_id: str) -> str:
        return f"{self.settings.path.rstrip('/')}/{site_id}"

    def get(self, name: str) -> StoredParameter | None:
        try:
            found = self._client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
        except ClientError as error:
            if _code(error) == "ParameterNotFound":
                return None
            raise SiteStoreError(f"cannot read {name}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise SiteStoreError(f"cannot read {name}: {error}") from error
        return StoredParameter.from_api(name, found)

    def create(self, name: str, value: str, *, secure: bool) -> None:
        """Writes a new parameter; refuses if it exists (someone else created it first)."""
        self._put(name, value, secure=secure, overwrite=False)

    def update(self, current: StoredParameter, value: str, *, secure: bool) -> int:
        """Overwrites ``current`` and reports a conflict if another write came in between;
        returns the new version."""
        latest = self.get(current.name)
        if latest is None or latest.version != current.version:
            raise SiteConflict(
                f"{current.name} changed while you were editing it (version "
                f"{current.version} -> {latest.version if latest else 'deleted'}); "
                "nothing written, try again"
            )
        if current.secure and not secure:
            secure = True  # never downgrade a SecureString to plain text by accident
        version = self._put(current.name, value, secure=secure, overwrite=True)
        if version != current.version + 1:
            raise SiteConflict(
                f"{current.name}: another edit was written at the same time (expected version "
                f"{current.version + 1}, got {version}); check the parameter history"
            )
        return version

    def delete(self, current: StoredParameter) -> None:
        latest = self.get(current.name)
        if latest is None or latest.version != current.version:
            raise SiteConflict(
                f"{current.name} changed while you were editing it; nothing deleted, try again"
            )
        try:
            self._client.delete_parameter(Name=current.name)
        except (ClientError, BotoCoreError) as error:
            raise SiteStoreError(f"cannot delete {current.name}: {_describe(error)}") from error
        self._forget()

    def _put(self, name: str, value: str, *, secure: bool, overwrite: bool) -> int:
        try:
            response = self._client.put_parameter(
                Name=name,
                Value=value,
                Type="SecureString" if secure else "String",
                Overwrite=overwrite,
                # Standard holds 4 KB; larger values (many headers, arrays) need Advanced.
                Tier="Intelligent-Tiering",
            )
        except ClientError as error:
            if _code(error) == "ParameterAlreadyExists":
                raise SiteConflict(f"{name} already exists (created by someone else?)") from None
            raise SiteStoreError(f"cannot write {name}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise SiteStoreError(f"cannot write {name}: {error}") from error
        self._forget()
        return int(response.get("Version", 0))

    # -- one site's entry (the CLI and the API) ----------------------------------------------

    def entry(self, site_id: str, parameter_name: str) -> SiteEntry:
        """The stored object of ``site_id`` in ``parameter_name``, read afresh."""
        current = self.get(parameter_name)
        if current is None:
            raise SiteConflict(f"{parameter_name} disappeared while reading; try again")
        try:
            value = json.loads(current.value)
        except ValueError:
            raise SiteConflict(f"{parameter_name} changed while reading; try again") from None
        if isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict) and item.get("id") == site_id:
                    return SiteEntry(parameter=current, value=value, index=index)
            raise SiteConflict(f"{site_id!r} is no longer in {parameter_name}; try again")
        return SiteEntry(parameter=current, value=value, index=None)

    def add(self, raw: Mapping[str, Any], *, secure: bool) -> Site:
        """Validates ``raw`` (with an ``id``) and writes it to its own new parameter."""
        site = Site.from_dict(raw)  # raises SiteError naming the field
        value = _fitting(encode_value(dict(raw)))
        self.create(self.parameter_name(site.id), value, secure=secure)
        return site

    def replace(self, entry: SiteEntry, raw: Mapping[str, Any], *, secure: bool = False) -> int:
        """Validates ``raw`` and writes it in place of ``entry``; returns the new version."""
        Site.from_dict(raw, default_id=entry.default_id)  # raises SiteError naming the field
        value = _fitting(encode_value(entry.replaced(raw)))
        return self.update(entry.parameter, value, secure=secure or entry.parameter.secure)

    def remove(self, entry: SiteEntry) -> None:
        """Removes ``entry``: its parameter, or its element of an array parameter."""
        rest = entry.removed()
        if rest is None:
            self.delete(entry.parameter)
        else:
            self.update(entry.parameter, encode_value(rest), secure=entry.parameter.secure)

    def _forget(self) -> None:
        # The next read after a write must see it, whatever the cache age.
        self._provider.clear_cache()  # type: ignore[no-untyped-call]  # Powertools: untyped
        with self._lock:
            self._listing = None


def encode_sites(sites: list[Site] | Site) -> str:
    """A parameter value: one site object, or an array, with every default filled in."""
    value = [s.to_dict() for s in sites] if isinstance(sites, list) else sites.to_dict()
    return json.dumps(value, indent=None, separators=(",", ":"), ensure_ascii=False)


def _fitting(value: str) -> str:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_VALUE_BYTES:
        raise SiteError(
            f"the parameter value would be {size} bytes; Parameter Store holds at most "
            f"{MAX_VALUE_BYTES}"
        )
    return value


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".strip()
    return str(error)
