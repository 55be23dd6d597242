"""hubtools: fine-tuning datasets you can trust, from any format to the Hub."""

from ._version import __version__
from .errors import ConversionError, ErrorCode, HubtoolsError, InputUnusableError, Issue
from .hub import PushResult, SpaceResult, deploy_space, push
from .load import LoadResult, load
from .records import Kind

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
