"""Every hubtools error and problem code, in one place.

A problem with one record is an :class:`Issue` (a code, the record's index, a message and a
fix hint); problems with the whole input or with options are exceptions that subclass
:class:`HubtoolsError` and the nearest builtin, so callers can catch them broadly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

__all__ = [
    "BackendError",
    "ConversionError",
    "DatasetFileNotFound",
    "ErrorCode",
    "HubAuthError",
    "HubError",
    "HubNetworkError",
    "HubRepoError",
    "HubtoolsError",
    "InputTooLargeError",
    "InputUnusableError",
    "Issue",
    "PublishError",
    "ReaderCrashedError",
    "ReviewError",
    "ReviewPermissionError",
    "RunLockedError",
    "RunStateError",
    "UnknownCheckError",
    "UnknownFormatError",
    "UnparseableOutputError",
]


class ErrorCode(str, Enum):
    """Stable codes for record-level problems; they appear in quarantine files and summaries."""

    # reading (E0xx)
    INVALID_JSON = "E001"
    TRUNCATED = "E002"
    INVALID_UTF8 = "E003"
    NOT_AN_OBJECT = "E004"
    #: a number a JSON reader would change: beyond 64 bits, or over/underflowing a float
    UNSAFE_NUMBER = "E005"
    #: a key given twice in one object (a parser would keep the last silently)
    DUPLICATE_KEY = "E006"
    #: objects and arrays nested deeper than the reader's bound
    TOO_DEEP = "E007"
    #: a file of a directory, or a part of a file (a corrupt Parquet page), that could not be read
    UNREADABLE = "E008"
    # format (E1xx)
    FORMAT_MISMATCH = "E101"
    MISSING_FIELD = "E102"
    WRONG_TYPE = "E103"
    MISSING_ROLE = "E104"
    UNKNOWN_ROLE = "E105"
    BAD_TOOL_CALL = "E106"
    UNPAIRED_TRANSCRIPT = "E107"
    NO_PREFERENCE = "E108"
    # content (E2xx)
    EMPTY_TEXT = "E201"
    TOO_LONG = "E202"
    ROLE_ORDER = "E203"
    NO_PROMPT = "E204"
    SAME_REPLIES = "E205"
    INVALID_TEXT = "E206"
    #: a prompt with no reply, where the stage needs one (a prompt list given to an SFT stage)
    NO_REPLY = "E207"
    # conversion (E3xx): the target format cannot hold the record
    CANNOT_CONVERT = "E301"

    @property
    def slug(self) -> str:
        """The lower-case name, e.g. ``missing_field``."""
        return self.name.lower()


@dataclass(frozen=True)
class Issue:
    """One problem with one record."""

    code: ErrorCode
    message: str
    index: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f" record {self.index}" if self.index is not None else ""
        fix = f". Fix: {self.hint}" if self.hint else ""
        return f"{self.code.value}{where}: {self.message}{fix}"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["code"] = self.code.slug
        return data


class HubtoolsError(Exception):
    """Base class of every error hubtools raises on purpose; ``hint`` says what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}. {self.hint}" if self.hint else self.message

    def __reduce__(self):
        # keyword-only arguments and extra attributes survive pickling (errors from a child process)
        return _rebuild, (type(self), self.message, self.__dict__)


def _rebuild(cls: type, message: str, state: dict) -> HubtoolsError:
    try:
        error = cls(message)
    except TypeError:  # an error that takes more arguments (ConversionError, BackendError)
        error = cls.__new__(cls)
        Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


# ---- input --------------------------------------------------------------------------------


class InputUnusableError(HubtoolsError, ValueError):
    """Raised when an input is not a dataset at all: empty, binary, or nothing parses."""

    exit_code = 2


class InputTooLargeError(InputUnusableError):
    """Raised when an input is over the size limit given to the reader, counted once decompressed."""


class ReaderCrashedError(InputUnusableError):
    """Raised when the child process reading an input died (a parser crash) or ran out of time."""


class DatasetFileNotFound(InputUnusableError, FileNotFoundError):
    """Raised when a path does not exist and does not look like a Hub dataset id either."""


class UnknownFormatError(InputUnusableError):
    """Raised when no known format matches the records, or ``--format`` names an unknown one."""


# ---- records ------------------------------------------------------------------------------


class ConversionError(HubtoolsError, ValueError):
    """Raised by a format for one record it cannot read or write; becomes a quarantine row."""

    def __init__(self, code: ErrorCode, message: str, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.code = code

    def to_issue(self, index: int | None = None) -> Issue:
        return Issue(self.code, self.message, index=index, hint=self.hint)


# ---- checks -------------------------------------------------------------------------------


class UnknownCheckError(HubtoolsError, ValueError):
    """Raised for a check name or check option that does not exist."""


# ---- generation and judging ---------------------------------------------------------------


class BackendError(HubtoolsError, RuntimeError):
    """Raised when an LLM backend call fails; ``retryable`` says whether trying again can help.

    ``reason`` is one of ``unreachable``, ``tls``, ``auth``, ``model_not_found``, ``timeout``,
    ``rate_limited``, ``server_error``, ``malformed``, ``reasoning_budget`` (a reasoning model
    spent ``max_tokens`` thinking), ``bad_request``, ``local``.
    """

    def __init__(self, message: str, *, reason: str, status: int | None = None,
                 retry_after: float | None = None, retryable: bool = False, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.retryable = retryable


class UnparseableOutputError(HubtoolsError, ValueError):
    """Raised when a judge's or generator's answer cannot be read; the runner asks again."""


class RunStateError(HubtoolsError, ValueError):
    """Raised when an output directory holds a run that cannot be resumed or would be overwritten."""


class RunLockedError(RunStateError):
    """Raised when another live run holds the output directory; ``holder`` is its pid, host and start."""

    def __init__(self, message: str, *, holder: dict | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.holder = holder or {}


# ---- publishing ---------------------------------------------------------------------------


class PublishError(HubtoolsError, ValueError):
    """Raised when there is nothing to publish, or publishing options do not fit the data."""


class HubError(HubtoolsError):
    """Base class of the errors raised while talking to the Hugging Face Hub; nothing was committed."""


class HubAuthError(HubError, PermissionError):
    """Raised for a missing, rejected or read-only token, or no write access to the namespace."""


class HubRepoError(HubError, ValueError):
    """Raised for a repo id that names another type of repo (a model or Space) or is malformed."""


class HubNetworkError(HubError, ConnectionError):
    """Raised when the connection to the Hub fails; says whether anything was committed."""


# ---- human review -------------------------------------------------------------------------


class ReviewError(HubtoolsError, ValueError):
    """Raised for a review call that cannot be done: unknown item, bad decision, missing store."""


class ReviewPermissionError(ReviewError, PermissionError):
    """Raised when a reviewer tries to change what is not theirs (another's annotation, adjudication)."""
