"""What the app knows: its settings (from ``hubtools.config``) and each browser session's state.

A :class:`Session` lives in a ``gr.State``: the current dataset (the path of a validated file,
and its ``LoadResult``, read once and handed to every tab by :meth:`Session.loaded`), its quality
results, and a scratch folder. It is immutable; handlers return a new one with
:func:`dataclasses.replace`, so Gradio sees the change.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import threading
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from .._bundled import bundled

if TYPE_CHECKING:
    from ..load import LoadResult

__all__ = ["EXAMPLE", "AppSettings", "Session", "describe", "opening_session", "fresh_dir", "problem", "too_big", "visitor",
           "with_dataset", "workdir"]

#: The bundled example: 20 preference pairs written for hubtools, with judge scores and rationales.
EXAMPLE = bundled("app", "examples", "preference_pairs.jsonl")


@dataclass(frozen=True)
class AppSettings:
    """How the app runs; :meth:`from_config` reads them from ``hubtools.config`` (the environment)."""

    max_upload_mb: int = 200
    #: where the annotation store (reviews.sqlite) and its Hub sync folder live
    app_dir: Path = Path(config.APP_DIR)
    #: team mode: the private dataset the annotations are committed to (None: no team mode)
    team_repo: str | None = None
    #: minutes between commits of the annotations
    sync_minutes: float = 5.0
    #: "Sign in with Hugging Face" is available (a Space with ``hf_oauth: true``)
    oauth: bool = False
    #: who may adjudicate and apply the reviews (None: anyone outside team mode, nobody in it)
    adjudicators: tuple[str, ...] | None = None
    #: the Space's or user's Hub token (HF_TOKEN); never shown, never used for a visitor's Hub reads
    hf_token: str | None = field(default=None, repr=False)
    #: reviewer name -> shared secret: the identity where there is no sign-in; never shown
    reviewer_secrets: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    #: publishing may fall back on ``hf_token`` (HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_PUBLISH)
    allow_server_token_for_publish: bool = False
    #: a public Space: endpoints must be https on public addresses or in ``allowed_endpoints``
    space: bool = False
    #: URL prefixes visitors may use as endpoints whatever their address (HUBTOOLS_ALLOWED_ENDPOINTS)
    allowed_endpoints: tuple[str, ...] = ()
    #: Hugging Face's inference routes may fall back on ``hf_token`` (HUBTOOLS_ALLOW_SERVER_TOKEN_FOR_INFERENCE)
    allow_server_token_for_inference: bool = False
    #: a dataset every session starts on, the app opening on its review (``hubtools app --review FILE``,
    #: as ``hubtools build`` says at its review gate); set by the operator, never by a visitor
    review: Path | None = None

    @classmethod
    def from_config(cls, **overrides: Any) -> AppSettings:
        """The settings the environment gives (see ``hubtools.config``), with ``overrides``."""
        values = {"max_upload_mb": config.MAX_UPLOAD_MB, "app_dir": Path(config.APP_DIR),
                  "team_repo": config.TEAM_REPO, "sync_minutes": config.TEAM_SYNC_MINUTES,
                  "oauth": config.OAUTH_AVAILABLE, "adjudicators": config.ADJUDICATORS,
                  "hf_token": config.HF_TOKEN, "reviewer_secrets": dict(config.REVIEWER_SECRETS),
                  "allow_server_token_for_publish": config.ALLOW_SERVER_TOKEN_FOR_PUBLISH,
                  "space": config.SPACE_ID is not None, "allowed_endpoints": config.ALLOWED_ENDPOINTS,
                  "allow_server_token_for_inference": config.ALLOW_SERVER_TOKEN_FOR_INFERENCE}
        values.update(overrides)
        return cls(**values)

    @property
    def team(self) -> bool:
        return self.team_repo is not None


class _Loaded:
    """The current dataset's ``LoadResult``, read once for the path it was read from.

    Shared by the sessions :func:`dataclasses.replace` makes from one another (same dataset);
    never copied or pickled: a copy starts empty and reads the file again when asked.
    """

    __slots__ = ("lock", "path", "result")

    def __init__(self, path: str | None = None, result: LoadResult | None = None) -> None:
        self.lock = threading.Lock()
        self.path, self.result = path, result

    def __copy__(self) -> _Loaded:
        return _Loaded()

    def __deepcopy__(self, memo: dict) -> _Loaded:
        return _Loaded()

    def __reduce__(self) -> tuple:
        return _Loaded, ()


@dataclass(frozen=True)
class Session:
    """One browser session: the current dataset and where its files go."""

    #: this session's scratch folder (created on first use)
    workdir: str | None = None
    #: the current dataset: a validated file in its own format
    dataset: str | None = None
    #: where it came from, for people ("dpo_en_demo.json", "user/pairs", "generated pairs")
    name: str | None = None
    kind: str | None = None
    format: str | None = None
    records: int = 0
    #: quality.json of the last check run on the current dataset
    quality: str | None = None
    #: how the current dataset was made, for the card (e.g. the ranking summary of generated pairs)
    #: (not hashed: Gradio hashes the state to see whether it changed, and a dict has no hash)
    provenance: dict[str, Any] | None = field(default=None, hash=False)
    #: the Generate tab's candidate replies, waiting to be judged and ranked
    candidates: str | None = None
    #: ``dataset`` as loaded (see :meth:`loaded`); not compared, hashed, shown, copied or pickled
    _loaded: _Loaded = field(default_factory=_Loaded, repr=False, compare=False, hash=False)

    def loaded(self) -> LoadResult:
        """The current dataset's ``LoadResult``: read on first use, then kept until the dataset changes.

        Every tab hands this to the library stages instead of the path, so the file is parsed once
        per dataset, not once per click. The path is always one the app itself set (a validated
        upload, the operator's ``--review`` file, or a stage's output), never one a visitor names.

        Raises:
            HubtoolsError: there is no current dataset, or it can no longer be read.
        """
        if self.dataset is None:
            from ..errors import HubtoolsError

            raise HubtoolsError("there is no current dataset", hint="load one in **Load** or make pairs in **Generate**")
        cache = self._loaded
        with cache.lock:  # two tabs clicked at once read the file once
            if cache.path != self.dataset or cache.result is None:
                from ..load import load

                cache.path, cache.result = self.dataset, load(self.dataset)
            return cache.result


def workdir(session: Session, *parts: str) -> tuple[Session, Path]:
    """The session with a scratch folder, and a new subfolder ``parts`` of it (created)."""
    if session.workdir is None:
        session = replace(session, workdir=tempfile.mkdtemp(prefix="hubtools-app-"))
    path = Path(session.workdir, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return session, path


def fresh_dir(session: Session, name: str) -> tuple[Session, Path]:
    """The session with a scratch folder, and a new, empty, uniquely named folder under ``name``."""
    session, parent = workdir(session, name)
    return session, Path(tempfile.mkdtemp(dir=parent, prefix=""))


def with_dataset(session: Session, path: str | os.PathLike, *, name: str, kind: str, format: str,
                 records: int, provenance: dict[str, Any] | None = None) -> Session:
    """The session with a new current dataset (the old one's quality results, provenance and loaded
    records are dropped; the new one is read on first use, see :meth:`Session.loaded`)."""
    return replace(session, dataset=str(path), name=name, kind=kind, format=format, records=records, quality=None,
                   provenance=provenance, _loaded=_Loaded())


def opening_session(settings: AppSettings) -> Session:
    """The session every visitor starts with: empty, or on ``settings.review``'s dataset."""
    if settings.review is None:
        return Session()
    from ..load import load

    loaded = load(settings.review).ensure_usable()
    return Session(dataset=str(settings.review), name=f"{settings.review.name} (to review)", kind=loaded.kind.value,
                   format=loaded.format, records=loaded.valid, _loaded=_Loaded(str(settings.review), loaded))


def describe(session: Session) -> str:
    """One markdown line naming the current dataset (what every tab works on)."""
    if session.dataset is None:
        return ("**Current dataset:** none yet. Load a file, a Hub dataset or the example in **Load**, "
                "or make pairs in **Generate**.")
    checked = "checked" if session.quality else "not checked yet"
    return (f"**Current dataset:** {session.name} · `{session.format}` ({session.kind}) · "
            f"{session.records:,} records · {checked}")


def problem(title: str, exc: BaseException) -> str:
    """A failure as markdown: what failed in bold, then the error with its fix."""
    return f"**{title}** {exc}"


def too_big(path: str | os.PathLike, settings: AppSettings) -> str | None:
    """Why a file is refused for its size (None when it is accepted).

    A .gz file counts what its trailer says it holds decompressed, as a quick first answer; the
    reader counts the decompressed bytes themselves (the trailer can lie).
    """
    size = Path(path).stat().st_size
    unpacked = ""
    if str(path).endswith(".gz") and size >= 18:  # gzip's last 4 bytes: the size decompressed (mod 4 GiB)
        with open(path, "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            stated = int.from_bytes(fh.read(4), "little")
        if stated > size:
            size, unpacked = stated, " once decompressed"
    if size <= settings.max_upload_mb * 1024 * 1024:
        return None
    return (f"**This file is too large.** It is {size / 1024 / 1024:,.1f} MB{unpacked}; this app accepts files up to "
            f"{settings.max_upload_mb} MB (HUBTOOLS_MAX_UPLOAD_MB). Use the `hubtools` command line for "
            "bigger files.")


def visitor(gr, settings: AppSettings, fn, *bound: Any, stream: bool = False):
    """``fn`` with ``settings`` and ``bound`` bound, Gradio's progress bar for a ``progress`` parameter and,
    with sign-in, the visitor's token for ``oauth_token`` (whatever the page sent); a generator stays one."""
    call = partial(fn, settings, *bound)
    sig = inspect.signature(call)
    params = []
    for p in sig.parameters.values():
        if p.name == "progress":
            p = p.replace(default=gr.Progress(track_tqdm=True))
        elif p.name == "oauth_token" and settings.oauth:
            p = p.replace(annotation=gr.OAuthToken | None)
        params.append(p)
    signed = settings.oauth and params[-1].name == "oauth_token"

    def values(args: tuple) -> list[Any]:
        args = list(args)
        if signed:
            args[-1] = getattr(args[-1], "token", None)
        return args

    if stream:
        def wrapped(*args):
            yield from call(*values(args))
    else:
        def wrapped(*args):
            return call(*values(args))

    wrapped.__signature__ = sig.replace(parameters=params)
    if signed:
        wrapped.__annotations__ = {"oauth_token": gr.OAuthToken | None}
    wrapped.__name__ = fn.__name__
    return wrapped
