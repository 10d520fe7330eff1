"""What the status page shows: its title and which sites (all by default).

- ``STATUS_PAGE_TITLE``: the heading (default "Service status").
- ``STATUS_PAGE_SITES``: comma-separated site ids to show.
- ``STATUS_PAGE_TAGS``: comma-separated tags; a site with any of them is shown.

With both empty every site with data appears; with either set, a site appears when its id
is listed or it carries a listed tag.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from webchecker.config import env_optional, env_str
from webchecker.exceptions import ConfigurationError

DEFAULT_TITLE = "Service status"
MAX_TITLE = 100
_SITE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")


@dataclass(frozen=True, kw_only=True)
class PageSettings:
    """The page's title and site selection; ``from_env()`` at cold start."""

    title: str = DEFAULT_TITLE
    site_ids: frozenset[str] = field(default_factory=frozenset)
    tags: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.title.strip() or len(self.title) > MAX_TITLE or not self.title.isprintable():
            raise ConfigurationError(
                f"STATUS_PAGE_TITLE={self.title[:40]!r}: expected 1..{MAX_TITLE} printable "
                "characters"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PageSettings:
        return cls(
            title=env_str("STATUS_PAGE_TITLE", DEFAULT_TITLE, env),
            site_ids=_names("STATUS_PAGE_SITES", env_optional("STATUS_PAGE_SITES", env), _SITE_ID),
            tags=_names("STATUS_PAGE_TAGS", env_optional("STATUS_PAGE_TAGS", env), _TAG),
        )

    @property
    def selects_all(self) -> bool:
        return not self.site_ids and not self.tags

    def selects(self, site_id: str, tags: Iterable[str]) -> bool:
        """Whether a site with this id and these tags appears on the page."""
        return self.selects_all or site_id in self.site_ids or not self.tags.isdisjoint(tags)


def _names(variable: str, raw: str | None, pattern: re.Pattern[str]) -> frozenset[str]:
    if raw is None:
        return frozenset()
    names = [part.strip() for part in raw.split(",") if part.strip()]
    for name in names:
        if not pattern.fullmatch(name):
            raise ConfigurationError(
                f"{variable}: {name[:70]!r} is not a valid name (expected {pattern.pattern})"
            )
    return frozenset(names)
