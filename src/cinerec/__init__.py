"""cinerec: movie recommendation you can study, trust and run."""

from cinerec.errors import CinerecError

__version__ = "0.1.0"
__all__ = ["CinerecError", "__version__"]
