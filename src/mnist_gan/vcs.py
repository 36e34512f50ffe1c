"""Git and DVC, as the pipeline asks them things: one runner each, and the questions several modules ask (a file
at a revision, a commit, uncommitted changes, the experiments DVC keeps as refs/exps/<..>/<baseline>/<name>)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def git(repo: Path | str | None, *args: str, timeout: float | None = 60) -> subprocess.CompletedProcess:
    """`git args...` in `repo` (None: wherever, for a URL), never prompting; the caller reads returncode."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=timeout, env=env)


def dvc(repo: Path | str, *args: str, timeout: float | None = 600) -> subprocess.CompletedProcess:
    """`dvc args...` in `repo`, with this interpreter's DVC and no analytics; the caller reads returncode."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True, text=True, timeout=timeout, env=env
    )


def uncommitted(repo: Path | str) -> list[str]:
    """The modified, staged and untracked (not ignored) paths of the work tree."""
    lines = git(repo, "status", "--porcelain").stdout.splitlines()  # "XY path": the first column may be a space
    return [line[3:] for line in lines]


def listed(paths: list[str], at_most: int = 3) -> str:
    """ "a, b, c and 4 more": paths in a one-line message."""
    more = f" and {len(paths) - at_most} more" if len(paths) > at_most else ""
    return ", ".join(paths[:at_most]) + more


def show(repo: Path | str, rev: str, path: str) -> str | None:
    """The text of `path` at revision `rev`, or None when git has no such file there."""
    done = git(repo, "show", f"{rev}:{path}")
    return done.stdout if done.returncode == 0 else None


def commit_of(repo: Path | str, rev: str) -> str | None:
    """The commit a branch, tag or hash names, or None."""
    return git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout.strip() or None


def experiments(repo: Path | str) -> dict[str, tuple[str, str]]:
    """{name: (ref, commit)} of every DVC experiment of the repo (refs/exps/<..>/<baseline>/<name>)."""
    done = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps")
    refs = (line.split() for line in done.stdout.splitlines())
    return {ref.rsplit("/", 1)[-1]: (ref, sha) for ref, sha in refs if ref.count("/") >= 4}


def experiment_ref(repo: Path | str, name: str) -> str | None:
    """refs/exps/<baseline>/<name>: where DVC keeps experiment `name` in `repo`."""
    return experiments(repo).get(name, (None, None))[0]


def remote_experiment_ref(url: str, name: str) -> str | None:
    """The ref of experiment `name` in the git remote at `url`, if one was pushed there."""
    for line in git(None, "ls-remote", url, "refs/exps/*").stdout.splitlines():
        ref = line.split("\t")[1]
        if ref.rsplit("/", 1)[-1] == name:
            return ref
    return None


def revision(cwd: Path | str = ".") -> str:
    """The commit a run started from (`git describe --always --dirty`), or "unknown" outside git."""
    try:
        done = git(cwd, "describe", "--always", "--dirty", "--abbrev=40", timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"
