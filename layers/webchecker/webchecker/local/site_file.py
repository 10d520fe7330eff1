"""The site list across runs: moto keeps Parameter Store only while it runs, so the site
parameters are saved to ``STATE_DIR/sites.json`` (after every tick and at stop) and put back
at the next start. Example sites are seeded only when there is no saved list.

The demo server may listen on another port in the next run (``--demo-port``, 0 for any
free port): the example sites the stack seeded follow it; sites the user added are never
rewritten (those pointing at the old demo address are named in the banner instead).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from webchecker.exceptions import ConfigurationError
from webchecker.local.demo import DemoServer
from webchecker.local.embedded.aws import EmbeddedAws
from webchecker.local.embedded.service import Service
from webchecker.local.services import ssm_client
from webchecker.local.settings import LocalSettings
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

logger = logging.getLogger(__name__)

PUBLIC_SITES: tuple[dict[str, Any], ...] = (
    {"id": "example-com", "url": "https://example.com/", "regex": "Example Domain"},
    {"id": "python-org", "url": "https://www.python.org/", "interval": 300},
    {"id": "aws-health", "url": "https://health.aws.amazon.com/health/status", "interval": 120},
)


def demo_sites(demo: str) -> list[dict[str, Any]]:
    """The example sites on the demo server ``demo`` (``http://127.0.0.1:PORT``)."""
    return [
        {"id": "demo-healthy", "url": f"{demo}/healthy", "regex": "healthy"},
        {"id": "demo-slow", "url": f"{demo}/slow", "timeout": 5},
        {"id": "demo-timeout", "url": f"{demo}/hang", "timeout": 2},
        {"id": "demo-failing", "url": f"{demo}/failing"},
        {"id": "demo-flapping", "url": f"{demo}/flapping"},
        {"id": "demo-wrong-body", "url": f"{demo}/wrong-body", "regex": "healthy"},
        {"id": "demo-redirect", "url": f"{demo}/redirect", "expected_status": ["200"]},
        # HTTPS to the demo's plain-HTTP port: the TLS handshake fails.
        {"id": "demo-tls", "url": demo.replace("http://", "https://", 1) + "/healthy"},
        # Port 9 (discard) on loopback: nothing listens there, so the connect is refused.
        {"id": "demo-refused", "url": "http://127.0.0.1:9/", "timeout": 2},
        {"id": "demo-hourly", "url": f"{demo}/healthy", "interval": 3600},
    ]


def follow_demo(value: str, old: str, new: str) -> str:
    """A saved parameter value with its demo-target URLs moved from ``old`` to ``new``.

    The demo server may listen on another port in the next run (``--demo-port``); sites
    pointing at it follow, every other field is kept as the user left it.
    """
    try:
        parsed = json.loads(value)
    except ValueError:
        return value  # invalid JSON stays invalid (and is reported by the scheduler)
    entries = parsed if isinstance(parsed, list) else [parsed]
    changed = False
    old_host, new_host = urlsplit(old).netloc, urlsplit(new).netloc
    for entry in entries:
        url = entry.get("url") if isinstance(entry, dict) else None
        if isinstance(url, str) and urlsplit(url).netloc == old_host:  # http:// and https://
            entry["url"] = urlunsplit(urlsplit(url)._replace(netloc=new_host))
            changed = True
    return json.dumps(parsed) if changed else value


def points_at(value: str, address: str) -> bool:
    """Whether a saved parameter value has a site whose URL is on ``address``'s host:port."""
    return follow_demo(value, address, "http://moved.invalid") != value


def seeded_names(sites_path: str) -> set[str]:
    """The parameters the stack seeds with the demo examples (those that follow the demo)."""
    return {f"{sites_path.rstrip('/')}/{site['id']}" for site in demo_sites("")}


class SiteFile(Service):
    """Loads (or seeds) the site parameters at start, saves them when they change and at stop."""

    def __init__(self, settings: LocalSettings, aws: EmbeddedAws, demo: DemoServer) -> None:
        self.settings = settings
        self.aws = aws
        self.demo = demo
        self.path = settings.state_path / "sites.json"
        self._store: SiteStore | None = None
        self._saved = ""
        #: The parameters holding seeded demo examples (moved with the demo server).
        self.seeded: set[str] = set()
        self.note: str | None = None  # user sites left on an old demo address (banner)

    @property
    def store(self) -> SiteStore:
        """The site catalog as the scheduler reads it (never cached)."""
        if self._store is None:
            self._store = SiteStore(
                SiteStoreSettings(path=self.settings.sites_path, cache_seconds=0),
                client=self.ssm(),
            )
        return self._store

    def ssm(self) -> SSMClient:
        return ssm_client(self.aws)

    def start(self) -> SiteFile:
        self._load()
        self.save()
        return self

    def stop(self) -> None:
        self.save()

    def _demo_url(self) -> str:
        return self.demo.url("").rstrip("/")

    def _load(self) -> None:
        demo = self._demo_url()
        saved = None
        if self.settings.persist_sites and self.path.exists():
            try:
                content = json.loads(self.path.read_text())
                saved = content["parameters"]
                saved_demo = content.get("demo")
            except (ValueError, KeyError, TypeError) as error:
                raise ConfigurationError(
                    f"{self.path}: not a saved site list ({error}); move it away to start "
                    "with the example sites"
                ) from error
        client = self.ssm()
        if saved is not None:
            # Files written before "seeded" was recorded: the example names.
            self.seeded = set(content.get("seeded", seeded_names(self.settings.sites_path)))
            left = []
            for parameter in saved:
                value = parameter["value"]
                if saved_demo and saved_demo != demo:
                    if parameter["name"] in self.seeded:
                        value = follow_demo(value, saved_demo, demo)
                    elif points_at(value, saved_demo):
                        left.append(parameter["name"].rsplit("/", 1)[-1])
                client.put_parameter(
                    Name=parameter["name"],
                    Value=value,
                    Type=parameter.get("type", "String"),
                    Overwrite=True,
                    Tier="Intelligent-Tiering",
                )
            if left:
                self.note = (
                    f"{', '.join(left)}: still on the previous demo address {saved_demo} "
                    f"(left as you set them; the demo targets are now on {demo})"
                )
            logger.info("loaded %d site parameters from %s", len(saved), self.path)
        elif self.settings.seed:
            examples = demo_sites(demo)
            self.seeded = seeded_names(self.settings.sites_path)
            if self.settings.public_sites:
                examples += [dict(site) for site in PUBLIC_SITES]
            for site in examples:
                client.put_parameter(
                    Name=f"{self.settings.sites_path.rstrip('/')}/{site['id']}",
                    Value=json.dumps(site),
                    Type="String",
                    Tier="Intelligent-Tiering",
                )

    def export(self) -> list[dict[str, str]]:
        """Every parameter under the sites path, with its type (to restore it exactly)."""
        parameters: list[dict[str, str]] = []
        paginator = self.ssm().get_paginator("get_parameters_by_path")
        for page in paginator.paginate(
            Path=self.settings.sites_path, Recursive=True, WithDecryption=True
        ):
            for parameter in page["Parameters"]:
                parameters.append(
                    {
                        "name": parameter["Name"],
                        "type": parameter["Type"],
                        "value": parameter["Value"],
                    }
                )
        return sorted(parameters, key=lambda parameter: parameter["name"])

    def save(self) -> None:
        """Writes the site list to ``sites.json`` if it changed (atomically)."""
        if not self.settings.persist_sites or self.aws.pid is None:
            return
        parameters = self.export()
        names = {parameter["name"] for parameter in parameters}
        content = {
            "path": self.settings.sites_path,
            "demo": self._demo_url(),  # the seeded sites under it follow the demo port
            "seeded": sorted(self.seeded & names),
            "parameters": parameters,
        }
        text = json.dumps(content, indent=2)
        if text == self._saved:
            return
        partial = self.path.with_suffix(".json.partial")
        partial.write_text(text + "\n")
        partial.replace(self.path)
        self._saved = text
