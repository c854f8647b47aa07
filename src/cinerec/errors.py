"""Every error cinerec raises on purpose, in one place. Each message names the input and
the fix; the CLI prints it as one line and exits 2 (``--debug`` shows the traceback)."""


class CinerecError(Exception):
    """Base of every error cinerec raises on purpose."""


class DatasetUnavailable(CinerecError):
    """A data set is neither in the data home nor downloadable right now."""


class DataFormatError(CinerecError):
    """A data file does not have the documented format (names file and line)."""


class ChecksumMismatch(CinerecError):
    """A downloaded file does not match its published checksum."""


class SplitError(CinerecError):
    """A split specification is invalid or cannot be applied to the data."""


class ConfigError(CinerecError):
    """A model or experiment configuration, or a command-line value, is invalid."""


class ArtifactError(CinerecError):
    """A saved model folder is missing, incomplete, damaged or inconsistent."""


class UnsafeTarget(CinerecError):
    """An output path holds something cinerec did not write and will not replace."""


class NotFittedError(CinerecError):
    """A model was used before `fit` was called."""


class UnknownModel(CinerecError):
    """No model is registered under the requested name."""


class UnknownId(CinerecError, KeyError):
    """A raw id is not in the id map."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0]) if self.args else ""


class StatsError(CinerecError):
    """A statistics request cannot be computed on the given data."""


class EvaluationError(CinerecError):
    """An evaluation request is invalid for the given model or data."""


class StoreError(CinerecError):
    """The feedback store cannot be opened, or refused a write (names the database URL)."""


class ServiceError(CinerecError):
    """A request the recommendation service refuses; ``status`` is the HTTP status a
    transport answers with (gRPC maps it to its own codes), ``code`` a short name."""

    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    """A model, movie or route the service does not have."""

    status = 404
    code = "not_found"


class Unauthorized(ServiceError):
    """A write request without the right API key."""

    status = 401
    code = "unauthorized"
