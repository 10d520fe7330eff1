"""The status page: numbers from PostgreSQL (model), index.html (html), status.json (document),
badges (badge), written to a directory or S3 (publish), all driven by ``statuspage``."""
