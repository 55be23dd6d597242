"""Deploy the hubtools app as a Gradio Space running this very version of hubtools."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from .card import write_text
from .hub import _client, _commit, _create, _hub_errors, _repo_state, _whoami, parse_repo_id
from .templates import TEMPLATE_DIRS, render, space_dir

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = ["SpaceResult", "deploy_space", "space_requirements"]

#: the hubtools package folder, whose files the Space runs
PACKAGE = Path(__file__).resolve().parent.parent


@dataclass
class SpaceResult:
    """What a Space deploy did: the Space URL, the commit, and the names of secrets and variables set."""

    repo_id: str
    url: str
    commit_url: str | None
    created: bool
    files: list[str]
    deleted: list[str]
    secrets: list[str]
    variables: list[str]
    hardware: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)



#: what ``gradio[oauth]`` adds: gr.LoginButton (team mode) needs them, and the Space installs
#: plain gradio from ``sdk_version``
OAUTH_REQUIREMENTS = ["authlib", "itsdangerous"]


def space_requirements(*, cpu: bool = True) -> list[str]:
    """What the Space installs: hubtools' own dependencies (gradio comes from ``sdk_version``)."""
    deps: list[str] = []
    pyproject = PACKAGE.parent / "pyproject.toml"
    with contextlib.suppress(ImportError, OSError, KeyError):
        import tomllib

        deps = list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    if not deps:
        from importlib.metadata import requires

        deps = [r for r in requires("hubtools") or [] if "extra ==" not in r]
    out = [d for d in deps if re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0].lower() != "gradio"]
    return (["--extra-index-url https://download.pytorch.org/whl/cpu"] if cpu else []) + out + OAUTH_REQUIREMENTS


def _package_files() -> dict[str, Path]:
    """The hubtools files a Space runs, by their path in the Space: the package as a wheel installs it,
    card templates in ``hubtools/_cards/`` included (in a checkout, through the symlink), Space files not."""
    package = PACKAGE
    files: dict[str, Path] = {}
    for root, dirs, names in os.walk(package, followlinks=True):
        skip = ("__pycache__", TEMPLATE_DIRS["space"])
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith("."))
        for name in names:
            if not name.endswith((".pyc", ".pyo")) and not name.startswith("."):
                path = Path(root) / name
                files[f"hubtools/{path.relative_to(package).as_posix()}"] = path
    return files


def deploy_space(
    repo_id: str,
    *,
    private: bool = False,
    hardware: str | None = None,
    secrets: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    title: str | None = None,
    message: str | None = None,
    token: str | None = None,
    api: HfApi | None = None,
) -> SpaceResult:
    """Create or update a Gradio Space running this very version of hubtools.

    The Space gets ``README.md`` (front matter: ``sdk: gradio``, ``app_file``, ``hf_oauth`` with
    scopes for team mode), ``app.py``, ``requirements.txt`` (hubtools' dependencies) and the
    hubtools package itself (``hubtools/``, templates in ``hubtools/_cards/``), in one commit; files a previous
    deploy shipped and this version no longer has are deleted. Secrets and variables are set
    before the commit, so the first build sees them. Secret values are never logged.

    Raises:
        HubAuthError, HubRepoError, HubNetworkError, HubError: as for :func:`push`.

    Example:
        >>> deploy_space("me/hubtools", secrets={"HF_TOKEN": "..."}).url  # doctest: +SKIP
        'https://huggingface.co/spaces/me/hubtools'
    """
    repo_id, typed = parse_repo_id(repo_id, "space")
    api, used_token = _client(token, api)
    _whoami(api, used_token)
    info = _repo_state(api, repo_id, "space", typed, used_token)
    created = info is None
    # a Space this deploy creates is its own: one another deploy created meanwhile is refused (409),
    # and the commit goes on top of the initial commit only (one landed meanwhile fails it, 412)
    parent = _create(api, repo_id, private, used_token, "space", action="deploy", space_sdk="gradio",
                     space_hardware=hardware) if created else info.sha
    with _hub_errors(api, repo_id, "set up the Space", used_token):
        if hardware and not created:
            api.request_space_hardware(repo_id, hardware, token=used_token)
        for key, value in (secrets or {}).items():
            api.add_space_secret(repo_id, key, value, token=used_token)
        for key, value in (variables or {}).items():
            api.add_space_variable(repo_id, key, value, token=used_token)
    from importlib.metadata import version

    src = space_dir()
    staging = Path(tempfile.mkdtemp(prefix="hubtools-space-"))
    try:
        ctx = {"title": title or repo_id.split("/")[-1], "version": __version__, "gradio_version": version("gradio"),
               "repo_id": repo_id, "requirements": space_requirements(cpu=not hardware or hardware.startswith("cpu")),
               "secrets": sorted(secrets or {}), "variables": sorted(variables or {})}
        files = {"README.md": write_text(staging / "README.md", render("space/README.md", ctx)),
                 "requirements.txt": write_text(staging / "requirements.txt",
                                                render("space/requirements.txt", ctx)),
                 "app.py": src / "app.py", **_package_files()}
        remote = [] if created else [s.rfilename for s in (info.siblings or [])]
        # cards/: where deploys before the templates moved into the package put them
        deleted = sorted(p for p in remote if p.startswith(("hubtools/", "cards/")) and p not in files)
        commit = _commit(api, repo_id, "space", files, deleted, create_pr=False, parent=parent, token=used_token,
                         message=message or f"Deploy hubtools {__version__}",
                         description="hubtools source, app and requirements, deployed by `hubtools space deploy`.")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SpaceResult(repo_id, f"{api.endpoint}/spaces/{repo_id}", commit.commit_url, created, sorted(files), deleted,
                       sorted(secrets or {}), sorted(variables or {}), hardware)
