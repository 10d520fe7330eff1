"""``/v1/sites``: the watched sites in Parameter Store, edited like ``webchecker sites``.

Reads and writes go through ``schedule.catalog.SiteStore`` and are validated by the
scheduler's own ``Site`` model, so a site the API accepts is one the scheduler checks, and
an error names the field as the CLI does. New sites get their own parameter
(``SITES_PATH/<id>``); sites inside array parameters are edited in place.

Versions: a site's ``ETag`` is its parameter's version. ``If-Match`` on PUT, PATCH and
DELETE is compared with the version read just before the write, and the write itself is
checked to be the very next version (as the CLI does): Parameter Store has no conditional
write, so a write racing in the few milliseconds between is reported as 409 afterwards.

SecureString sites: header values are shown as ``***``; a PUT or PATCH that sends ``***``
back keeps the stored value. A SecureString is never downgraded to String.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query

from webchecker.api.models import SiteObject, SitePage, site_input_schema
from webchecker.api.pagination import (
    DEFAULT_LIMIT,
    MAX_CURSOR,
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
)
from webchecker.api.problems import problems
from webchecker.api.services import Services
from webchecker.exceptions import NotFound, PreconditionFailed, SiteConflict, SiteError
from webchecker.schedule.catalog import SiteEntry, SiteStore, StoredParameter, id_from_url
from webchecker.sites import Site

MASK = "***"
SiteIdPath = Annotated[str, Path(description="the site's id", max_length=200)]
IfMatch = Annotated[
    str | None,
    Header(
        max_length=200,
        description='the ETag of the version you read ("*": any); 412 when it changed since',
    ),
]
Secure = Annotated[
    bool,
    Query(description="store as SecureString (for secret header values); never downgraded"),
]


def router(services: Services) -> Router:
    """The routes of ``/sites`` on ``services``' site store."""
    routes = Router()  # type: ignore[no-untyped-call]  # Powertools: untyped
    store = services.sites

    @routes.get(
        "/sites",
        summary="List sites",
        description="Every valid site in id order, with every default filled in.",
        responses=problems(422),
        tags=["sites"],
    )
    def list_sites(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR)] = None,
    ) -> SitePage:
        listing = store.listing()
        ids = list(listing.by_id)
        start = 0 if cursor is None else bisect_right(ids, decode_cursor(cursor, str)[0])
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        return SitePage.model_construct(
            sites=[
                _shown(listing.by_id[site_id], _secure(listing.parameter_of(site_id)))
                for site_id in page
            ],
            next_cursor=encode_cursor(page[-1]) if more and page else None,
        )

    @routes.post(
        "/sites",
        summary="Add a site",
        description="The id defaults to the URL's host, as `webchecker sites add` does.",
        status_code=201,
        responses=problems(409, 422, ok=201),
        tags=["sites"],
    )
    def add_site(
        site: Annotated[dict[str, Any], Body(json_schema_extra=site_input_schema(), strict=True)],
        secure: Secure = False,
    ) -> Response[SiteObject]:
        raw = _checked(site)
        if "id" not in raw:
            if not isinstance(raw.get("url"), str):
                Site.from_dict(raw, default_id="unnamed")  # the url's own error comes first
            raw["id"] = id_from_url(raw["url"])
        candidate = Site.from_dict(raw)  # raises SiteError naming the field
        # the (cached) listing finds the id in another parameter; its own parameter existing
        # already is refused by Parameter Store itself (create never overwrites). A full
        # re-read per POST would be 1,000 GetParametersByPath pages at 10,000 sites.
        holder = store.listing().where.get(candidate.id)
        if holder is not None:
            raise SiteConflict(f"id: {candidate.id!r} already exists in {holder}")
        store.add(raw, secure=secure)
        entry = store.entry(candidate.id, store.parameter_name(candidate.id))
        return _respond(entry, candidate.id, status=201)

    @routes.get(
        "/sites/<site_id>",
        summary="Get a site",
        responses=problems(404, 422),
        tags=["sites"],
    )
    def get_site(site_id: SiteIdPath) -> Response[SiteObject]:
        return _respond(_locate(store, site_id), site_id)

    @routes.put(
        "/sites/<site_id>",
        summary="Replace a site",
        description="The whole object; the id is the path's. `***` header values are kept.",
        responses=problems(404, 409, 412, 422),
        tags=["sites"],
    )
    def replace_site(
        site_id: SiteIdPath,
        site: Annotated[dict[str, Any], Body(json_schema_extra=site_input_schema(), strict=True)],
        secure: Secure = False,
        if_match: IfMatch = None,
    ) -> Response[SiteObject]:
        raw = _checked(site)
        if raw.get("id", site_id) != site_id:
            raise SiteError("cannot be changed: it is the path's id", field="id")
        entry = _locate(store, site_id)
        _precondition(entry, if_match)
        raw.pop("id", None)
        if "id" in entry.raw or entry.default_id != site_id:
            raw = {"id": site_id, **raw}
        _unmask(raw, entry)
        store.replace(entry, raw, secure=secure)
        return _respond(store.entry(site_id, entry.parameter.name), site_id)

    @routes.patch(
        "/sites/<site_id>",
        summary="Change some fields of a site",
        description="A merge patch: the fields given replace the stored ones; null restores "
        "a field's default.",
        responses=problems(404, 409, 412, 422),
        tags=["sites"],
    )
    def patch_site(
        site_id: SiteIdPath,
        changes: Annotated[
            dict[str, Any], Body(json_schema_extra=site_input_schema(patch=True), strict=True)
        ],
        secure: Secure = False,
        if_match: IfMatch = None,
    ) -> Response[SiteObject]:
        changes = _checked(changes)
        if changes.get("id", site_id) not in (site_id, None):
            raise SiteError("cannot be changed: add a site under the new id", field="id")
        changes.pop("id", None)
        entry = _locate(store, site_id)
        _precondition(entry, if_match)
        raw = entry.raw
        for key, value in changes.items():
            if value is None:
                raw.pop(key, None)
            else:
                raw[key] = value
        _unmask(raw, entry)
        store.replace(entry, raw, secure=secure)
        return _respond(store.entry(site_id, entry.parameter.name), site_id)

    @routes.delete(
        "/sites/<site_id>",
        summary="Remove a site",
        status_code=204,
        responses=problems(404, 409, 412, 422, ok=204),
        tags=["sites"],
    )
    def delete_site(site_id: SiteIdPath, if_match: IfMatch = None) -> Response[None]:
        entry = _locate(store, site_id)
        _precondition(entry, if_match)
        store.remove(entry)
        return Response(status_code=204, body=None)

    return routes


def _locate(store: SiteStore, site_id: str) -> SiteEntry:
    """The stored entry of ``site_id``, read afresh; NotFound when there is none.

    The listing may be up to SITES_CACHE_SECONDS old: a site missing from it is looked for
    in its conventional parameter, and a stale location is re-read once.
    """
    for force in (False, True):
        listing = store.listing(force=force)
        name = listing.where.get(site_id)
        if name is None:
            conventional = store.parameter_name(site_id)
            if store.get(conventional) is None:
                break
            name = conventional
        try:
            entry = store.entry(site_id, name)
            if Site.from_dict(entry.raw, default_id=entry.default_id).id == site_id:
                return entry
        except (SiteConflict, SiteError):
            continue  # moved or changed since the listing was read
    raise NotFound(f"no site {site_id!r} under {store.settings.path}")


def _respond(entry: SiteEntry, site_id: str, *, status: int = 200) -> Response[SiteObject]:
    site = Site.from_dict(entry.raw, default_id=entry.default_id)
    headers = {"ETag": _etag(entry)}
    if status == 201:
        headers["Location"] = f"/v1/sites/{site_id}"
    return Response(
        status_code=status,
        content_type="application/json",
        body=_shown(site, entry.parameter.secure),
        headers=headers,
    )


def _shown(site: Site, secure: bool) -> SiteObject:
    shown = site.to_dict()
    if secure:
        shown["headers"] = {name: MASK for name in shown["headers"]}
    return SiteObject.model_construct(**shown)


def _secure(parameter: StoredParameter | None) -> bool:
    return parameter is not None and parameter.secure


def _etag(entry: SiteEntry) -> str:
    return f'"{entry.parameter.version}"'


def _precondition(entry: SiteEntry, if_match: str | None) -> None:
    if if_match is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in wanted and _etag(entry) not in wanted:
        raise PreconditionFailed(
            f"the site is at version {_etag(entry)}, not {if_match.strip()}; read it again"
        )


def _unmask(raw: dict[str, Any], entry: SiteEntry) -> None:
    """``***`` header values of a SecureString site stand for the stored ones."""
    headers = raw.get("headers")
    if not entry.parameter.secure or not isinstance(headers, Mapping):
        return
    stored = entry.raw.get("headers")
    stored = stored if isinstance(stored, Mapping) else {}
    kept = dict(headers)
    for name, value in headers.items():
        if value == MASK:
            if name not in stored:
                raise SiteError(
                    f"value of {name!r} is {MASK!r} but the site has no stored value to keep",
                    field="headers",
                )
            kept[name] = stored[name]
    raw["headers"] = kept


def _checked(body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the body; a lone surrogate anywhere is refused naming its field."""
    for key, value in body.items():
        if _has_surrogate(key) or _has_surrogate(value):
            raise SiteError("contains a lone surrogate (not valid Unicode)", field=str(key))
    return dict(body)


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)
    if isinstance(value, Mapping):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    return False


def find_site(store: SiteStore, site_id: str) -> Site:
    """The site ``site_id`` from the (cached) listing, else its conventional parameter."""
    site = store.listing().site(site_id)
    if site is not None:
        return site
    try:
        return Site.from_dict(_locate(store, site_id).raw, default_id=site_id)
    except SiteError:
        raise NotFound(f"no site {site_id!r} under {store.settings.path}") from None
