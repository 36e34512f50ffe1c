"""What a sweep's driver checks and prepares before any trial starts: a clean work tree, a git remote and a DVC
remote every node reaches, the swept commit published, the cached upstream outputs pushed.

On one machine the repo itself is the git remote and the project's default DVC remote (a local folder) serves;
across machines the user names a git remote and a DVC remote every node reaches (e.g. S3, docs/remote.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from mnist_gan import vcs
from mnist_gan.sweep.grid import SweepError
from mnist_gan.sweep.trial import UPSTREAM


def git(repo: Path, *args: str, timeout: float = 60) -> str:
    """`git args...`'s output, or a SweepError naming what git said."""
    done = vcs.git(repo, *args, timeout=timeout)
    if done.returncode != 0:
        raise SweepError(f"git {args[0]}: {(done.stderr.strip() or done.stdout.strip()).splitlines()[-1]}")
    return done.stdout.strip()


def require_clean_tree(repo: Path) -> None:
    """A trial sees only what is committed: refuse modified, staged or untracked (not ignored) files."""
    dirty = vcs.uncommitted(repo)
    if dirty:
        raise SweepError(
            f"the work tree has uncommitted changes ({vcs.listed(dirty)}); trials see only committed files: "
            f"commit them (or stash) first"
        )


def git_remote_url(repo: Path, remote: str | None) -> str:
    """The URL every node clones from: a remote's configured URL, a URL or path given as is, or (None) the repo."""
    if remote is None:
        return str(Path(repo).resolve())
    configured = vcs.git(repo, "config", "--get", f"remote.{remote}.url").stdout.strip()
    return configured or remote


def check_git_remote(url: str, timeout: float = 30) -> None:
    try:
        done = vcs.git(None, "ls-remote", "--heads", url, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SweepError(f"git remote {url} did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise SweepError(f"cannot reach the git remote {url}: {reason}")


def publish(repo: Path, url: str, sweep: str) -> str:
    """Make the swept commit fetchable by every node as refs/sweeps/<sweep>; return its sha."""
    sha = git(repo, "rev-parse", "HEAD")
    if Path(url) == Path(repo).resolve():
        git(repo, "update-ref", f"refs/sweeps/{sweep}", sha)
    else:
        git(repo, "push", "-q", url, f"{sha}:refs/sweeps/{sweep}", timeout=300)
    return sha


def dvc_remote(repo: Path, name: str | None) -> tuple[str, str]:
    """(name, url) of the DVC remote trials pull from and push to: `name`, or the project's default."""
    done = vcs.dvc(repo, "remote", "list")
    remotes = dict(line.split(maxsplit=1) for line in done.stdout.splitlines() if line.strip())
    if name is None:
        name = vcs.dvc(repo, "remote", "default").stdout.strip()
        if not name:
            raise SweepError("no DVC remote: name one with --dvc-remote, or set a default (`dvc remote default`)")
    if name not in remotes:
        raise SweepError(f"no DVC remote named {name!r} (known: {', '.join(remotes) or 'none'})")
    return name, remotes[name].strip()


def is_local(url: str) -> bool:
    """A DVC remote that is a folder of this machine (no scheme like s3:// or ssh://)."""
    return "://" not in url


def push_upstream(repo: Path, remote: str) -> list[str]:
    """Push the cached outputs of the upstream stages to `remote` (trials pull them instead of recomputing);
    return a warning per stage whose outputs are not in the local cache (its trials recompute them)."""
    warnings = []
    for stage in UPSTREAM:
        done = vcs.dvc(repo, "push", "-q", "-r", remote, stage)
        if done.returncode == 0:
            continue
        text = (done.stderr + done.stdout).strip()
        if "missing" in text.lower() or "not in cache" in text.lower():
            warnings.append(f"the {stage} stage's outputs are not in the local cache; every trial will recompute them")
            continue
        raise SweepError(f"cannot push to the DVC remote {remote!r}: {text.splitlines()[-1] if text else 'failed'}")
    return warnings
