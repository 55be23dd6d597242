"""hubtools: fine-tuning datasets you can trust, from any format to the Hub."""

from .errors import ConversionError, ErrorCode, HubtoolsError, InputUnusableError, Issue
from .load import LoadResult, load
from .records import Kind

__version__ = "0.1.0"

from .hub import PushResult, SpaceResult, deploy_space, push  # noqa: E402 (hub reads __version__)

__all__ = [
           "ConversionError",
           "ErrorCode",
           "HubtoolsError",
           "InputUnusableError",
           "Issue",
           "Kind",
           "LoadResult",
           "PushResult",
           "SpaceResult",
           "__version__",
           "deploy_space",
           "load",
           "push",
]
