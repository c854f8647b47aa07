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
