"""Read a Hub dataset with a chosen identity, and only from the Hub.

A dataset card may point its ``data_files`` anywhere: another web host, ``/etc`` on the machine
that reads it, ``file:`` URLs. ``datasets`` follows them. hubtools refuses such a dataset before
``datasets`` resolves anything (the card's ``configs`` are read first), and checks the resolved
files again after it did. It also reads only the builders of the containers it knows.

``token`` follows ``huggingface_hub``: ``None`` uses ``HF_TOKEN`` or the saved login (the CLI),
``False`` sends no token, a string sends that token. With an explicit identity (``False`` or a
string, as the app gives) a dataset the Hub refuses is never served from the local cache, where
someone else's earlier read may have left it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from .errors import InputUnusableError

__all__ = ["load_hub_dataset", "off_hub"]

#: ``datasets`` builders for the containers hubtools reads (``cache``: a dataset read before)
_BUILDERS = frozenset({"json", "csv", "parquet", "text", "arrow"})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_CARD_FILES = ("README.md", ".huggingface.yaml")


def off_hub(path: str) -> bool:
    """True when a ``data_files`` entry of a card can lead off the dataset's Hub repos.

    Relative paths and ``hf://datasets/...`` stay on the Hub; URLs of other schemes, absolute
    and home paths, fsspec chains (``::``) and ``..`` do not.

    >>> off_hub("data/train-*.parquet"), off_hub("https://example.com/x.jsonl"), off_hub("/etc/passwd")
    (False, True, True)
    """
    text = path.strip()
    if text.startswith("hf://datasets/"):
        rest = text[len("hf://datasets/"):]
    elif _SCHEME.match(text) or text.startswith(("/", "\\", "~")):
        return True
    else:
        rest = text
    return "::" in text or ".." in re.split(r"[\\/]", rest)


def _card_paths(value: Any) -> Iterator[str]:
    """Every path string in a card's ``data_files`` or ``data_dir`` value (split names left out)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "split":
                yield from _card_paths(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _card_paths(item)


def _refuse(repo_id: str, where: str) -> InputUnusableError:
    return InputUnusableError(
        f"{repo_id}: its data files are not on the Hub ({where}); hubtools reads a Hub dataset only from "
        "its Hub repository",
        hint="put the data files in the dataset repository, or download them and load the files")


def _check_card(repo_id: str, token: str | bool | None) -> None:
    """Refuse a dataset whose card's ``configs`` name data files off the Hub (before any is resolved)."""
    import yaml
    from huggingface_hub import HfApi
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.repocard import metadata_load

    api = HfApi(token=token)
    for filename in _CARD_FILES:
        try:
            path = api.hf_hub_download(repo_id, filename, repo_type="dataset")
        except EntryNotFoundError:
            continue
        except Exception:  # noqa: BLE001 - unreachable or refused: datasets says so below, in its words
            return
        try:
            if filename == "README.md":
                meta = metadata_load(path) or {}
            else:
                with open(path, encoding="utf-8") as fh:
                    meta = yaml.safe_load(fh) or {}
        except (yaml.YAMLError, UnicodeDecodeError, ValueError) as exc:
            raise InputUnusableError(f"{repo_id}: its {filename} metadata cannot be read ({exc.__class__.__name__})",
                                     hint="fix the YAML front matter of the dataset card") from None
        configs = meta.get("configs") if isinstance(meta, dict) else None
        for config in configs if isinstance(configs, list) else []:
            if not isinstance(config, dict):
                continue
            for key in ("data_files", "data_dir"):
                for path_in_card in _card_paths(config.get(key)):
                    if off_hub(path_in_card):
                        raise _refuse(repo_id, f"{filename} names {path_in_card!r}")


def _check_builder(repo_id: str, builder: Any, *, strict: bool) -> None:
    """Refuse builders hubtools does not read and resolved data files that are not on the Hub."""
    name = type(builder).__module__.rsplit(".", 1)[-1]
    if name == "cache":
        if strict:  # the Hub refused this identity, and datasets fell back on someone's cached copy
            raise FileNotFoundError(f"Dataset '{repo_id}' doesn't exist on the Hub or cannot be accessed.")
        return
    if name not in _BUILDERS:
        raise InputUnusableError(f"{repo_id}: its data files are read by the {name!r} builder, which hubtools "
                                 "does not use", hint="hubtools reads JSON, JSONL, CSV, Parquet, text and Arrow")
    for files in (builder.config.data_files or {}).values():
        for resolved in files:
            if not str(resolved).startswith("hf://datasets/"):
                raise _refuse(repo_id, f"resolved to {resolved}")


def load_hub_dataset(repo_id: str, config: str | None, *, token: str | bool | None = None):
    """``datasets.load_dataset(repo_id, config)`` (a ``DatasetDict``), from the Hub only, as ``token``.

    Raises:
        InputUnusableError: the card points data files off the Hub, or they are of a kind hubtools
            does not read.
        FileNotFoundError, ValueError, ConnectionError: as ``datasets.load_dataset`` raises them.
    """
    import datasets

    _check_card(repo_id, token)
    # hf://datasets/: never a local folder that happens to be called like the id
    builder = datasets.load_dataset_builder(f"hf://datasets/{repo_id}", config, token=token)
    _check_builder(repo_id, builder, strict=token is not None)
    builder.download_and_prepare()
    return builder.as_dataset()
