"""hubtools: fine-tuning datasets you can trust, from any format to the Hub."""

from .errors import ConversionError, ErrorCode, HubtoolsError, InputUnusableError, Issue
from .load import LoadResult, load
from .records import Kind

__version__ = "0.1.0"

__all__ = ["load", "LoadResult", "Kind", "ErrorCode", "Issue", "HubtoolsError",
           "InputUnusableError", "ConversionError", "__version__"]
