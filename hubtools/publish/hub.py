"""Publish to the Hugging Face Hub: a dataset with its card and reports in one commit, and the Space.

``push`` validates the input, runs the checks (or reads ``quality.json``), writes Parquet shards
under ``data/`` in the input's own wire format (so ``datasets.load_dataset(repo_id)`` gives back
the records as they were given), renders the card and guidelines (merged with what is on the
Hub, hand edits kept) and the quality report, and sends everything as **one commit**: the Hub
applies a commit whole or not at all, so a failure never leaves a half-published dataset.

What a push owns, and replaces on the next push: ``data/<split>-NNNNN-of-NNNNN.parquet``,
``quarantine/<split>.jsonl``, ``plots/*.png``, ``README.md`` and ``annotation_guidelines.md``
(merged, not overwritten), ``dataset_quality_report.md``, ``quality.json`` and
``category_distribution.json``. Every other file in the repository is left alone.

The token comes from ``token=``, else ``HF_TOKEN`` or ``hf auth login`` (read by
``huggingface_hub``). It is never logged, printed or written, and is scrubbed from error messages.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import HubAuthError, HubError, HubNetworkError, HubRepoError, PublishError
from ..hub_ids import is_repo_id
from ..redact import redact
from .card import stage
from .context import CardSettings, card_context
from .quality import quality_for

if TYPE_CHECKING:
    from huggingface_hub import HfApi

    from ..load import LoadResult

__all__ = ["PushResult", "parse_repo_id", "push"]

logger = logging.getLogger(__name__)

#: largest Parquet shard written (bytes on disk); bigger data is split into several shards
MAX_SHARD_BYTES = 500 * 1024 * 1024
_SPLIT = re.compile(r"^\w+(\.\w+)*$")
_SHARD = re.compile(r"^data/(?P<split>\w+(?:\.\w+)*)-\d{5}-of-\d{5}\.parquet$")
_TYPE_PREFIX = {"datasets": "dataset", "spaces": "space", "models": "model"}


# --------------------------------------------------------------------------- results


@dataclass
class PushResult:
    """What a push did (or, with ``dry_run``, would do)."""

    repo_id: str
    url: str
    split: str
    records: int
    quarantined: int
    commit_url: str | None = None
    pr_url: str | None = None
    commit_id: str | None = None
    created: bool = False
    changed: bool = True
    dry_run: bool = False
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    kept_sections: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: with ``dry_run``: where the files that would be uploaded are
    staging_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- repo ids and errors


def parse_repo_id(repo_id: str, repo_type: str = "dataset") -> tuple[str, bool]:
    """Return ``(namespace/name, typed)`` from an id, a ``datasets/ns/name`` path or a Hub URL.

    ``typed`` says the id named its type explicitly (a prefix or URL).

    Raises:
        HubRepoError: the id names another type of repo, or is not ``namespace/name``.
    """
    text = repo_id.strip().rstrip("/")
    text = re.sub(r"^(?:https?://[^/]+/|hf://)", "", text)
    parts = text.split("/")
    typed = len(parts) == 3 and parts[0] in _TYPE_PREFIX
    if typed:
        if _TYPE_PREFIX[parts[0]] != repo_type:
            raise HubRepoError(f"{repo_id} is a {_TYPE_PREFIX[parts[0]]} repo, not a {repo_type}",
                               hint=f"give a {repo_type} id such as 'your-name/{parts[2]}'")
        text = "/".join(parts[1:])
    if not is_repo_id(text):
        raise HubRepoError(f"{repo_id!r} is not a repo id",
                           hint="use 'namespace/name' (letters, digits, '-', '_', '.')")
    return text, typed


def _network_errors() -> tuple[type[BaseException], ...]:
    """The transport exceptions of whichever HTTP stack ``huggingface_hub`` uses."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                         ("requests", "ConnectionError"), ("requests", "Timeout")):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(__import__(module), name))
    return tuple(found)


@contextlib.contextmanager
def _hub_errors(api: HfApi, repo: str, action: str, token: str | None) -> Iterator[None]:
    """Turn client exceptions into one-line hubtools errors that say what to do."""
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    try:
        yield
    except HubError:
        raise
    except RepositoryNotFoundError:
        raise HubRepoError(f"{repo} was not found, or this token cannot see it",
                           hint="check the id and that the token belongs to its owner") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else None
        said = redact(" ".join((getattr(exc, "server_message", None) or str(exc).splitlines()[0]).split()), token)
        if status == 401:
            raise HubAuthError(f"the Hub rejected the token while trying to {action}",
                               hint=f"create a token with write access at {api.endpoint}/settings/tokens "
                                    "and set HF_TOKEN, run `hf auth login`, or pass --token") from None
        if status == 403:
            raise HubAuthError(f"no write access to {repo} ({said})",
                               hint="use a token with the 'write' role, or push to your own namespace") from None
        if status == 412:
            raise HubError(f"{repo} changed while pushing (someone else committed); nothing was committed",
                           hint="run the same command again") from None
        raise HubError(f"the Hub refused to {action} ({status}: {said}); nothing was committed",
                       hint="fix what the message says and run the same command again") from None
    except _network_errors() as exc:
        raise HubNetworkError(f"network failure while trying to {action} ({type(exc).__name__}); "
                              "nothing was committed", hint=f"check that {api.endpoint} is reachable "
                              "and run the same command again") from None


def _client(token: str | None, api: HfApi | None) -> tuple[HfApi, str]:
    """The API client and the token it will use; a missing token is an error here, not later."""
    from huggingface_hub import HfApi, get_token

    api = api or HfApi(token=token)
    used = token or api.token or get_token()
    if not used:
        raise HubAuthError("no Hugging Face token",
                           hint="set HF_TOKEN, run `hf auth login`, or pass --token")
    return api, used


def _whoami(api: HfApi, token: str) -> str:
    """The token's user name; refuses a token that can only read."""
    with _hub_errors(api, "your account", "check the token", token):
        info = api.whoami(token=token)
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise HubAuthError("this Hugging Face token can only read",
                           hint=f"create a token with the 'write' role at {api.endpoint}/settings/tokens")
    return info.get("name", "")


def _repo_state(api: HfApi, repo_id: str, repo_type: str, typed: bool, token: str) -> Any:
    """The repo's info at main (None if it does not exist); refuses a bare id that is another type."""
    from huggingface_hub.errors import RepositoryNotFoundError

    with _hub_errors(api, repo_id, "read the repo", token):
        try:
            return api.repo_info(repo_id, repo_type=repo_type, token=token)
        except RepositoryNotFoundError:
            pass
        if not typed:
            for other in ("model", "dataset", "space"):
                if other != repo_type and api.repo_exists(repo_id, repo_type=other, token=token):
                    raise HubRepoError(
                        f"{repo_id} is a {other} repo, not a {repo_type}",
                        hint=f"give another name, or write '{repo_type}s/{repo_id}' to create a {repo_type} "
                             f"beside the {other}")
    return None


def _download_text(api: HfApi, repo_id: str, repo_type: str, path: str, revision: str, token: str) -> str | None:
    from huggingface_hub.errors import EntryNotFoundError

    try:
        local = api.hf_hub_download(repo_id, path, repo_type=repo_type, revision=revision, token=token)
    except EntryNotFoundError:
        return None
    return Path(local).read_text(encoding="utf-8")


def _commit(api: HfApi, repo_id: str, repo_type: str, files: dict[str, Path], deleted: list[str], *,
            message: str, description: str, create_pr: bool, parent: str | None, token: str):
    """Upload the content first, then send one commit; report whether anything was committed."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    additions = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(local)) for p, local in sorted(files.items())]
    operations = [*additions, *(CommitOperationDelete(path_in_repo=p) for p in sorted(deleted))]
    with _hub_errors(api, repo_id, "upload the files", token):
        api.preupload_lfs_files(repo_id, additions=additions, repo_type=repo_type, create_pr=create_pr, token=token)
    try:
        with _hub_errors(api, repo_id, "commit", token):
            return api.create_commit(repo_id, operations, commit_message=message, commit_description=description,
                                     repo_type=repo_type, create_pr=create_pr, parent_commit=parent, token=token)
    except HubNetworkError as exc:
        exc.message = _after_lost_commit(api, repo_id, repo_type, parent, create_pr, token)
        raise


def _after_lost_commit(api: HfApi, repo_id: str, repo_type: str, parent: str | None, create_pr: bool,
                       token: str) -> str:
    """Say whether a commit whose answer was lost went through: compare the branch head."""
    head = None
    with contextlib.suppress(Exception):
        head = api.repo_info(repo_id, repo_type=repo_type, token=token).sha
    if head is not None and head == parent and not create_pr:
        return "network failure while committing; nothing was committed"
    if head is not None and not create_pr:
        return f"network failure while committing; {repo_id} now has a new commit: check it before pushing again"
    return "network failure while committing; it is not known whether the commit went through"


# --------------------------------------------------------------------------- push


def _create(api: HfApi, repo_id: str, private: bool, token: str, repo_type: str = "dataset", *,
            action: str = "push", **options: Any) -> str:
    """Create the repo this push (or Space deploy) planned for; return its initial commit.

    The push was prepared against an empty repo (no card to merge, no files to replace), so
    it commits on top of the initial commit and nothing else: a repo another push created
    since it looked is refused here (409), and a commit another push landed after this one
    created the repo makes the commit fail (412, parent moved). Neither push silently
    replaces the other's files. ``options`` go to ``create_repo`` (a Space's sdk and hardware).
    """
    from huggingface_hub.errors import HfHubHTTPError

    with _hub_errors(api, repo_id, "create the repo", token):
        try:
            api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=False, token=token, **options)
        except HfHubHTTPError as exc:
            if exc.response is None or exc.response.status_code != 409:
                raise
            raise HubError(f"{repo_id} was created by someone else while this {action} was being prepared; "
                           "nothing was committed", hint="run the same command again to publish on top of it") from None
        return api.list_repo_commits(repo_id, repo_type=repo_type, token=token)[-1].commit_id


def _write_shards(loaded: LoadResult, fmt: str, split: str, staging: Path) -> tuple[list[Path], Any]:
    """Write the valid records as ``fmt`` Parquet shards in ``staging/data``; return them and the write result."""
    import pyarrow.parquet as pq

    from ..convert import write
    from ..io import atomic_write

    whole = staging / f".{split}.parquet"
    result = write(loaded, whole, format=fmt)
    data = staging / "data"
    data.mkdir(parents=True, exist_ok=True)
    n = max(1, -(-whole.stat().st_size // MAX_SHARD_BYTES))
    if n == 1:
        target = data / f"{split}-00000-of-00001.parquet"
        whole.replace(target)
        return [target], result
    table = pq.read_table(whole)
    rows = -(-table.num_rows // n)
    shards = []
    for i in range(n):
        target = data / f"{split}-{i:05d}-of-{n:05d}.parquet"
        with atomic_write(target) as fh:
            pq.write_table(table.slice(i * rows, rows), fh)
        shards.append(target)
    whole.unlink()
    return shards, result


def _owned(path: str, split: str) -> bool:
    """Whether a push of ``split`` replaces this repo file."""
    from .report import REPORT_FILES

    shard = _SHARD.match(path)
    return bool((shard and shard.group("split") == split) or path == f"quarantine/{split}.jsonl"
                or re.fullmatch(r"plots/[^/]+\.png", path) or path in REPORT_FILES)


def push(
    source: str | os.PathLike | LoadResult,
    repo_id: str,
    *,
    split: str = "train",
    private: bool = False,
    create_pr: bool = False,
    message: str | None = None,
    dry_run: bool = False,
    quality: Any = None,
    include_quarantine: bool = False,
    to: str | None = None,
    format: str | None = None,
    settings: CardSettings | None = None,
    token: str | None = None,
    api: HfApi | None = None,
    progress: bool = False,
) -> PushResult:
    """Publish a dataset to the Hub: data, card, guidelines and quality report in one commit.

    Args:
        source: a file, directory or Hub id (read with :func:`hubtools.load`) or a ``LoadResult``.
        repo_id: ``namespace/name``, ``datasets/namespace/name`` or the dataset's URL.
        split: the split these records are; other splits already on the Hub are kept.
        create_pr: open a pull request instead of committing to ``main``.
        dry_run: prepare everything, compare with the Hub, upload nothing.
        quality: a ``quality.json`` path, a ``QualityResult`` or its dict; None runs the checks.
        include_quarantine: also publish the quarantined records as ``quarantine/<split>.jsonl``
            (never as data).
        to: wire format of the data files (default: the input's own, so the records load back
            as they were given).
        format: read ``source`` as this format instead of detecting it.
        settings: license, pretty name, language, provenance for the card.
        token: a Hub token (default: ``HF_TOKEN`` or the stored login).

    Raises:
        InputUnusableError: no valid record to publish (the top reasons, with counts).
        PublishError: a bad split name, or ``quality`` for other data.
        HubAuthError, HubRepoError, HubNetworkError, HubError: the Hub refused or could not be
            reached; nothing was committed.

    Example:
        >>> push("pairs.json", "me/pairs", create_pr=True).pr_url  # doctest: +SKIP
        'https://huggingface.co/datasets/me/pairs/discussions/1'
    """
    from ..convert import write_quarantine
    from ..formats import get_format
    from ..load import LoadResult, load

    if not _SPLIT.match(split):
        raise PublishError(f"{split!r} is not a split name", hint="use letters, digits and '_' (e.g. train, test)")
    repo_id, typed = parse_repo_id(repo_id, "dataset")
    api, used_token = _client(token, api)
    _whoami(api, used_token)
    info = _repo_state(api, repo_id, "dataset", typed, used_token)
    loaded = source if isinstance(source, LoadResult) else load(source, format=format, progress=progress)
    # none valid: the top reasons with counts and what would work (prompts in an SFT file are
    # quarantined as no_reply, so they are never published as SFT data)
    loaded.ensure_usable()
    fmt = get_format(to or loaded.format).name
    settings = settings or CardSettings()
    settings = replace(settings, repo_id=repo_id, split=split, format=fmt)
    quality = quality_for(loaded, quality, progress=progress)
    remote: list[str] = [s.rfilename for s in (info.siblings or [])] if info is not None else []
    notes = []
    if info is not None and private and not info.private:
        notes.append(f"{repo_id} already exists and is public: --private only applies when creating a repo")
    staging = Path(tempfile.mkdtemp(prefix="hubtools-push-"))
    try:
        shards, written = _write_shards(loaded, fmt, split, staging)
        rows = sorted(loaded.quarantine + written.quarantine, key=lambda r: r.index if r.index is not None else -1)
        files = {f"data/{p.name}": p for p in shards}
        if include_quarantine and rows:
            files[f"quarantine/{split}.jsonl"] = staging / "quarantine" / f"{split}.jsonl"
            write_quarantine(files[f"quarantine/{split}.jsonl"], rows)
        splits = {m.group("split"): None for p in remote if (m := _SHARD.match(p)) and m.group("split") != split}
        splits = {split: written.written, **dict(sorted(splits.items()))}
        import pyarrow.parquet as pq

        table = pq.read_table(shards[0]).slice(0, 1)
        ctx = card_context(loaded, quality, settings, schema=table.schema, example=(table.to_pylist() or [{}])[0],
                           splits=splits, quarantined=len(rows), quarantine_published=bool(include_quarantine and rows))
        with _hub_errors(api, repo_id, "read the card", used_token):
            old_card = _download_text(api, repo_id, "dataset", "README.md", info.sha, used_token) if info else None
            old_guide = (_download_text(api, repo_id, "dataset", "annotation_guidelines.md", info.sha, used_token)
                         if info else None)
        staged = stage(staging, ctx, quality, settings, old_card=old_card, old_guide=old_guide)
        files.update(staged.files)
        deleted = sorted(p for p in remote if _owned(p, split) and p not in files)
        base_url = f"{api.endpoint}/datasets/{repo_id}"
        result = PushResult(repo_id, base_url, split, written.written, len(rows), created=info is None,
                            dry_run=dry_run, added=sorted(files), deleted=deleted, kept_sections=staged.kept_sections,
                            notes=notes)
        if dry_run:
            result.staging_dir = str(staging)
            return result
        # the parent of this commit is the state the push was prepared against
        parent = info.sha if info is not None else _create(api, repo_id, private, used_token)
        summary = message or f"Publish {split}: {written.written:,} records ({fmt}) with hubtools {__version__}"
        description = (f"{loaded.total:,} input records: {written.written:,} published in `{split}`, "
                       f"{len(rows):,} quarantined{' (in quarantine/)' if ctx['quarantine_published'] else ''}. "
                       f"Checks: {', '.join(quality.results) or 'none'}.")
        commit = _commit(api, repo_id, "dataset", files, deleted, message=summary, description=description,
                         create_pr=create_pr, parent=parent, token=used_token)
        result.commit_url, result.pr_url, result.commit_id = commit.commit_url, commit.pr_url, commit.oid
        result.changed = commit.oid != parent or commit.pr_url is not None
        return result
    finally:
        if not dry_run:
            shutil.rmtree(staging, ignore_errors=True)
