"""The REST API: one router per resource, composed under /v1 by ``api.app``."""
