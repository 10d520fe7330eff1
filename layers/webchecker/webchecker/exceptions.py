"""The exceptions Webchecker raises: one root, one subclass per kind of failure.

    WebcheckerError
     ├── ConfigurationError    bad environment or settings (raised at cold start)
     ├── SiteError             one site entry is invalid (names the field and the problem)
     ├── InvalidMessage        a check-result message does not meet the schema
     ├── PublishError          check results could not be delivered to Kafka
     ├── StoreUnavailable      the database cannot be reached; the batch must be retried
     ├── InvalidEvent          a Lambda event does not have the expected shape
     ├── SiteStoreError        Parameter Store (the site list) could not be read or written
     │    └── SiteConflict     a site write lost a race, or its id or parameter is taken
     ├── FanoutError           no asynchronous invoke of the checker succeeded
     ├── InvocationFailed      a function run by the local Lambda API raised (or is unknown)
     ├── StatusPageError       the status page's files could not be written (directory, S3)
     ├── SmokeCheckFailed      a deployed stack failed the post-deploy smoke check
     ├── InvalidRequest        a request parameter is invalid (names the field and the problem)
     ├── NotFound              the site, window or subscription a request names does not exist
     ├── PreconditionFailed    a request's If-Match names a version that is no longer current
     └── SubscriptionError     the alert topic's subscriptions could not be read or changed

Third-party exceptions are converted where the library is called, with ``raise ... from``.
"""

from __future__ import annotations


class WebcheckerError(Exception):
    """Root of every error Webchecker raises on purpose."""


class ConfigurationError(WebcheckerError):
    """A setting (usually an environment variable) is missing or malformed."""


class SiteError(WebcheckerError):
    """A site entry is invalid; ``field`` names the offending key (None for the whole entry)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class InvalidMessage(WebcheckerError):
    """A check-result message is not valid JSON or does not meet the schema."""


class PublishError(WebcheckerError):
    """One or more check results were not delivered to the Kafka topic."""


class StoreUnavailable(WebcheckerError):
    """The database cannot be reached or the connection broke; retry the batch later."""


class InvalidEvent(WebcheckerError):
    """A Lambda event does not have the expected shape (for example no ``time``)."""


class SiteStoreError(WebcheckerError):
    """Parameter Store, where the site list lives, could not be read or written."""


class SiteConflict(SiteStoreError):
    """A site write lost a race with another writer, or the id or parameter is already taken."""


class FanoutError(WebcheckerError):
    """The due sites could not be handed to the checker function (every invoke failed)."""


class InvocationFailed(WebcheckerError):
    """A function invoked through the local Lambda API raised; ``error_type`` names the error."""

    def __init__(self, message: str, *, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class StatusPageError(WebcheckerError):
    """The status page's files could not be written (a directory or the S3 bucket)."""


class SmokeCheckFailed(WebcheckerError):
    """A deployed stack did not pass the post-deploy smoke check (``webchecker smoke``)."""


class InvalidRequest(WebcheckerError):
    """A request parameter or body field is invalid; ``field`` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class NotFound(WebcheckerError):
    """The site, maintenance window or subscription a request names does not exist."""


class PreconditionFailed(WebcheckerError):
    """A request's ``If-Match`` names a version of the site that is no longer the current one."""


class SubscriptionError(WebcheckerError):
    """The alert topic's subscriptions (SNS) could not be read or changed."""
