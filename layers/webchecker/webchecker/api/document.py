"""Writes the API's OpenAPI document: ``python -m webchecker.api.document > docs/openapi.json``.

``make openapi`` runs it; a test keeps the committed file equal to what the API serves at
``GET /v1/openapi.json``. Nothing is connected to: the clients are built but never called.
"""

from __future__ import annotations

import json
import sys

import boto3

from webchecker.api.app import Api
from webchecker.api.services import ApiSettings, Services
from webchecker.schedule.catalog import SiteStore, SiteStoreSettings
from webchecker.store.database import DatabaseSettings


def build_document() -> str:
    settings = ApiSettings(
        sites=SiteStoreSettings(),
        database=DatabaseSettings(database="webchecker", user="webchecker", host="localhost"),
    )
    ssm = boto3.client("ssm", region_name="us-east-1")
    api = Api(Services(settings, sites=SiteStore(settings.sites, client=ssm)))
    return json.dumps(api.document, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    sys.stdout.write(build_document())
    return 0


if __name__ == "__main__":
    sys.exit(main())
