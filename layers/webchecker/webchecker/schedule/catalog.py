"""The site list in SSM Parameter Store: read it (scheduler, CLI) and edit it (CLI).

Every parameter under ``SITES_PATH`` (searched recursively) holds one site object or an
array of them. Reading goes through Powertools Parameters (paginated GetParametersByPath,
SecureString decrypted, cached per container for ``SITES_CACHE_SECONDS``); the values are
validated by ``webchecker.sites.load_sites``, the same model every writer uses.

Writing keeps one parameter per site by default (``SITES_PATH/<id>``), so two people
editing different sites never touch the same parameter. Parameter Store has no conditional
write, so an update reads the version first and checks afterwards that its write was the
very next version; if someone else wrote in between, the edit is reported as a conflict.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from webchecker.config import env_int, env_str
from webchecker.exceptions import ConfigurationError, SiteStoreError
from webchecker.sites import Site, SiteCatalog, load_sites

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

DEFAULT_SITES_PATH = "/webchecker/sites"
# Powertools' own default; the scheduler runs every minute, so edits apply within 5 minutes
# while a container reads Parameter Store at most once per 5 minutes (its API is throttled).
DEFAULT_CACHE_SECONDS = 300
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


def new_ssm_client() -> SSMClient:
    """An SSM client honouring AWS_ENDPOINT_URL / AWS_REGION (boto3 reads them natively)."""
    client: SSMClient = boto3.client("ssm", config=_BOTO_CONFIG)
    return client


class SiteStore:
    """The site parameters under one path. Create once per container and reuse it."""

    def __init__(self, settings: SiteStoreSettings, *, client: SSMClient | None = None) -> None:
        self.settings = settings
        self._client = client if client is not None else new_ssm_client()
        self._provider = SSMProvider(boto3_client=self._client)
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
        parameters = self.read(force=force)
        catalog = load_sites(parameters)
        where: dict[str, str] = {}
        # Same order as load_sites (by name), so the first owner of an id is the kept one.
        for name in sorted(parameters):
            for site in load_sites({name: parameters[name]}).sites:
                where.setdefault(site.id, name)
        return catalog, {site.id: where[site.id] for site in catalog.sites}

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
        return StoredParameter(
            name=name,
            value=found.get("Value", ""),
            secure=found.get("Type") == "SecureString",
            version=int(found.get("Version", 0)),
        )

    def create(self, name: str, value: str, *, secure: bool) -> None:
        """Writes a new parameter; refuses if it exists (someone else created it first)."""
        self._put(name, value, secure=secure, overwrite=False)

    def update(self, current: StoredParameter, value: str, *, secure: bool) -> None:
        """Overwrites ``current`` and reports a conflict if another write came in between."""
        latest = self.get(current.name)
        if latest is None or latest.version != current.version:
            raise SiteStoreError(
                f"{current.name} changed while you were editing it (version "
                f"{current.version} -> {latest.version if latest else 'deleted'}); "
                "nothing written, run the command again"
            )
        if current.secure and not secure:
            secure = True  # never downgrade a SecureString to plain text by accident
        version = self._put(current.name, value, secure=secure, overwrite=True)
        if version != current.version + 1:
            raise SiteStoreError(
                f"{current.name}: another edit was written at the same time (expected version "
                f"{current.version + 1}, got {version}); check the parameter history"
            )

    def delete(self, current: StoredParameter) -> None:
        latest = self.get(current.name)
        if latest is None or latest.version != current.version:
            raise SiteStoreError(
                f"{current.name} changed while you were editing it; nothing deleted, run again"
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
                raise SiteStoreError(f"{name} already exists (created by someone else?)") from None
            raise SiteStoreError(f"cannot write {name}: {_describe(error)}") from error
        except BotoCoreError as error:
            raise SiteStoreError(f"cannot write {name}: {error}") from error
        self._forget()
        return int(response.get("Version", 0))

    def _forget(self) -> None:
        # The next read after a write must see it, whatever the cache age.
        self._provider.clear_cache()  # type: ignore[no-untyped-call]  # Powertools: untyped


def encode_sites(sites: list[Site] | Site) -> str:
    """A parameter value: one site object, or an array, with every default filled in."""
    value = [s.to_dict() for s in sites] if isinstance(sites, list) else sites.to_dict()
    return json.dumps(value, indent=None, separators=(",", ":"), ensure_ascii=False)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{info.get('Code', 'Error')}: {info.get('Message', '')}".strip()
    return str(error)
