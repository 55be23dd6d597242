"""hubtools: fine-tuning datasets you can trust, from any format to the Hub."""

from ._version import __version__
from .errors import ConversionError, ErrorCode, HubtoolsError, InputUnusableError, Issue
from .load import LoadResult, load
from .publish import CardResult, CardSettings, PushResult, SpaceResult, deploy_space, push, write_cards
from .records import Kind

__all__ = [
           "CardResult",
           "CardSettings",
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
           "write_cards",
]
