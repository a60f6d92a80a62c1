"""The small set of errors services raise, each with a message a person can act on."""


class ServiceError(Exception):
    """A backend call failed; str(error) is meant for the operator's eyes."""

    def __init__(self, message: str, *, backend: str | None = None):
        super().__init__(message)
        self.backend = backend


class NotConfigured(ServiceError):
    """The backend has no configuration; shown as 'not configured', never as a failure."""


class Unreachable(ServiceError):
    """The backend did not answer: refused, timed out, DNS failure, connection lost."""


class BackendFailed(ServiceError):
    """The backend answered with an error (bad credentials, server error, bad query)."""


class MigrationError(ServiceError):
    """A migration could not be applied; nothing of it was kept."""
