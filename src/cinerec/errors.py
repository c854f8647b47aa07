"""The errors a user can cause. Each message names the input and the fix."""


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
    """A model or experiment configuration is invalid."""


class ArtifactError(CinerecError):
    """A saved model folder is missing, incomplete or from an incompatible version."""


class NotFittedError(CinerecError):
    """A model was used before `fit` was called."""


class UnknownModel(CinerecError):
    """No model is registered under the requested name."""
