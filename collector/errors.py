"""What can go wrong, each mapped to the exit code the operator (and Vector) sees."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3


class CollectorError(Exception):
    """Base class: `str(error)` is the one line an operator reads."""

    exit_code = EXIT_FAILED


class UsageError(CollectorError):
    """Bad options, a missing key, a corrupt state file: the operator must fix something local."""

    exit_code = EXIT_USAGE


class StateError(UsageError):
    """The state directory cannot be used as it is (corrupt, unreadable, locked)."""


class StateWriteError(CollectorError):
    """The state could not be saved (disk full, I/O error).

    Raised before the page it belongs to is written, so nothing past the last saved position has
    been emitted: the next run neither loses nor repeats anything.
    """

    def __init__(self, message: str, no_space: bool = False):
        super().__init__(message)
        self.no_space = no_space


class RefusedError(CollectorError):
    """The API refused the key or the organization: retrying without a change will not help.

    `cause` is one of: auth, permission, not_found, not_enabled.
    """

    exit_code = EXIT_REFUSED

    def __init__(self, cause: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.cause = cause
        self.request_id = request_id


class BadRequestError(CollectorError):
    """A 400 that is not "not enabled": a parameter or a saved cursor the API rejects."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


class ApiFailure(CollectorError):
    """The API failed in a way that retrying did not (or must not) fix."""

    def __init__(self, message: str, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


class OutputClosed(CollectorError):
    """stdout went away (Vector stopped reading): nothing more can be delivered."""


class ShutdownRequested(BaseException):
    """SIGTERM or SIGINT arrived outside a critical section; unwinds to the run loop.

    A BaseException so that no `except Exception` on the way swallows it.
    """
