"""Versions of the generator by name: DVC's model registry (dvc.yaml `artifacts:`, GTO's git tags).

`release` registers the checked-out commit's artifacts (the generator, its ONNX and safetensors files) as one
version, `generator@v1.2.0` and so on, each tag's message carrying the evaluate stage's metrics at that commit, and
can assign it a stage (`generator#prod#3`); `promote` moves a stage to a version released before. Both refuse, in
one line, whatever would leave a consumer unable to fetch the weights: uncommitted changes, a pipeline out of date
(`dvc status`), outputs missing from the DVC remote a consumer reads, no git remote for the tags or one whose
default branch a clone cannot check out, an unknown version. After a push, the new version is resolved from the
git remote as a consumer does (`dvc artifacts get --show-url`). A consumer needs no clone:
`dvc artifacts get URL generator --stage prod` (docs/remote.md).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from mnist_gan import vcs
from mnist_gan.errors import PipelineError
from mnist_gan.evaluation.registry import METRICS_FILE, summary
from mnist_gan.settings.configs import MODELS, conditioning_words
from mnist_gan.settings.params import read_yaml


class ReleaseError(PipelineError):
    """A version that could not be fetched, or an option that names nothing: nothing is tagged."""

    exit_code = 2


@dataclass(frozen=True)
class Release:
    repo: Path = Path(".")
    version: str | None = None  # "v1.2.0"; None: `bump` the latest (GTO's rule), or v0.0.1 for the first
    bump: str | None = None  # major | minor | patch
    stage: str | None = None  # also assign this stage ("prod") to the new version
    push: bool = False  # push the new tags to `git_remote`
    git_remote: str = "origin"


def artifacts(repo: Path, rev: str = "HEAD") -> dict[str, dict]:
    """dvc.yaml's `artifacts:` at `rev`: {name: {path, type, desc, labels}}."""
    text = vcs.show(repo, rev, "dvc.yaml")
    declared = (yaml.safe_load(text) or {}).get("artifacts") if text else None
    if not declared:
        raise ReleaseError(f"dvc.yaml at {rev} declares no artifacts: nothing to release")
    return declared


def expected_labels(params: dict) -> set[str]:
    """The labels a generator trained with `params` carries: its family, and how it is conditioned."""
    return {params["model"], "conditional" if params["conditional"] else "unconditional"}


def check_labels(repo: Path, declared: dict[str, dict]) -> None:
    """The labels that state a fact about the weights (a family, the conditioning) are those params.yaml trains."""
    params = read_yaml(vcs.show(repo, "HEAD", "params.yaml") or "{}")
    wanted, factual = expected_labels(params), {*MODELS, "conditional", "unconditional"}
    for name, spec in declared.items():
        labels = set(spec.get("labels") or ())
        if labels & factual != wanted:
            raise ReleaseError(
                f"artifact {name}'s labels {sorted(labels)} disagree with params.yaml ({', '.join(sorted(wanted))}): "
                f"update them in dvc.yaml and commit"
            )


def require_committed(repo: Path) -> None:
    dirty = vcs.uncommitted(repo)
    if dirty:
        raise ReleaseError(
            f"uncommitted changes ({vcs.listed(dirty)}): a version is a commit; commit (and dvc push) first"
        )


def require_reproduced(repo: Path) -> None:
    """dvc.lock matches the code, params and outputs of the commit (`dvc status` reports nothing)."""
    done = vcs.dvc(repo, "status", "--json")
    if done.returncode != 0:
        raise ReleaseError(f"dvc status failed: {last_line(done)}")
    changed = json.loads(done.stdout or "{}")
    if changed:
        raise ReleaseError(
            f"the pipeline is not up to date ({vcs.listed(sorted(changed))} changed): dvc repro, commit, then release"
        )


def consumer_remote(repo: Path) -> str:
    """The DVC remote a consumer's `dvc artifacts get` reads: the committed default, at its committed URL."""
    name = vcs.dvc(repo, "config", "--project", "core.remote").stdout.strip()
    if not name:
        raise ReleaseError("no default DVC remote in .dvc/config: a consumer would have nowhere to fetch from")
    committed = vcs.dvc(repo, "config", "--project", f"remote.{name}.url").stdout.strip()
    effective = vcs.dvc(repo, "config", f"remote.{name}.url").stdout.strip()
    if committed != effective:
        raise ReleaseError(
            f"DVC remote {name!r} is {effective} here but {committed} in the committed .dvc/config (.dvc/config.local "
            f"overrides it): a consumer would read {committed}; commit the URL you push to"
        )
    return name


def require_in_remote(repo: Path, remote: str, paths: list[str]) -> None:
    """Every artifact's bytes are in the DVC remote (`dvc status --cloud` reports none as new or missing)."""
    done = vcs.dvc(repo, "status", "--cloud", "--json", "-r", remote, *paths)
    if done.returncode != 0:
        raise ReleaseError(f"cannot check the DVC remote {remote!r}: {last_line(done)}")
    absent = sorted(p for p, state in json.loads(done.stdout or "{}").items() if state in ("new", "missing"))
    if absent:
        raise ReleaseError(f"{vcs.listed(absent)} not in the DVC remote {remote!r}: run dvc push -r {remote} first")


def require_git_remote(repo: Path, name: str) -> str:
    url = vcs.git(repo, "config", "--get", f"remote.{name}.url").stdout.strip()
    if not url:
        known = vcs.git(repo, "remote").stdout.split()
        raise ReleaseError(
            f"no git remote {name!r} to push the version tags to (known: {', '.join(known) or 'none'}): "
            f"git remote add {name} URL"
        )
    return url


def require_cloneable(name: str, url: str) -> None:
    """`dvc artifacts get URL ...` first clones the remote's default branch: the remote's HEAD must name a branch
    it holds (a `git init --bare` origin names `master` whatever was pushed to it)."""
    done = vcs.git(None, "ls-remote", "--symref", url, "HEAD")
    if done.returncode != 0:
        raise ReleaseError(f"cannot reach the git remote {name!r} ({url}): {last_line(done)}")
    if not any(line.endswith("\tHEAD") and not line.startswith("ref: ") for line in done.stdout.splitlines()):
        raise ReleaseError(
            f"the git remote {name!r} ({url}) has no default branch a consumer's clone can check out (its HEAD names "
            f"no branch it holds; `dvc artifacts get` would fail): push your branch there, or point its HEAD at one "
            f"it holds (git symbolic-ref HEAD refs/heads/main, in the remote)"
        )


def require_resolvable(name: str, url: str, artifact: str, version: str) -> None:
    """Resolve `artifact@version` from the git remote as a consumer's `dvc artifacts get` does (no download)."""
    with tempfile.TemporaryDirectory() as empty:
        done = vcs.dvc(empty, "artifacts", "get", "--show-url", url, artifact, "--rev", version)
    if done.returncode != 0:
        raise ReleaseError(
            f"pushed, but a consumer cannot resolve {artifact}@{version} from {name!r} ({url}): {last_line(done)}"
        )


def metrics_line(repo: Path, rev: str = "HEAD") -> str:
    """The evaluate stage's key metrics at `rev`, beside the real floor: what tells the versions apart."""
    text = vcs.show(repo, rev, METRICS_FILE)
    if text is None:
        return "no evaluate metrics at this commit"
    scores = json.loads(text)
    return summary(scores.get("generated", {}), scores.get("real_floor"))


def describe(repo: Path, rev: str = "HEAD") -> str:
    """One line for a tag message: family, conditioning, epochs, metrics."""
    params = read_yaml(vcs.show(repo, rev, "params.yaml") or "{}")
    how = conditioning_words(params.get("conditional", True), params.get("clusters", 0))
    return f"{params.get('model')}, {how}, {params.get('epochs')} epochs; {metrics_line(repo, rev)}"


def release(opts: Release) -> list[str]:
    """Check, then register every artifact of HEAD as one version (and assign `opts.stage`); return the tags."""
    from gto import api

    repo = Path(opts.repo)
    if opts.version and opts.bump:
        raise ReleaseError("give --version or --bump, not both")
    declared = artifacts(repo)
    check_labels(repo, declared)
    require_committed(repo)
    require_reproduced(repo)
    git_url = require_git_remote(repo, opts.git_remote)
    require_cloneable(opts.git_remote, git_url)
    require_in_remote(repo, consumer_remote(repo), [spec["path"] for spec in declared.values()])
    message = describe(repo)
    tags: list[str] = []
    version = opts.version
    for name in declared:  # the first artifact picks the version (a bump), the others follow it
        bump = {} if version else {f"bump_{opts.bump}": True} if opts.bump else {}
        registered = gto(api.register, repo, name, "HEAD", version=version, message=message, **bump)
        version = registered.version
        tags.append(f"{name}@{version}")
    if opts.stage:
        tags += assign(repo, list(declared), version, opts.stage, message)
    if opts.push:
        push(repo, opts.git_remote, tags)
        require_resolvable(opts.git_remote, git_url, next(iter(declared)), version)
    return tags


def promote(repo: Path, version: str, stage: str, push_to: str | None = None) -> list[str]:
    """Assign `stage` to `version`, released before, of every artifact; push the tags to `push_to` if given."""
    repo = Path(repo)
    declared = artifacts(repo)
    known = versions(repo, next(iter(declared)))
    if version not in known:
        raise ReleaseError(f"no version {version} of {next(iter(declared))} (released: {', '.join(known) or 'none'})")
    if push_to:
        require_cloneable(push_to, require_git_remote(repo, push_to))
    tags = assign(repo, list(declared), version, stage, f"{stage}: {describe(repo, known[version])}")
    if push_to:
        push(repo, push_to, tags)
    return tags


def versions(repo: Path, name: str) -> dict[str, str]:
    """{version: commit} of every registered version of artifact `name`."""
    from gto import api

    shown = gto(api.show, repo, name)
    found = {v["version"]: v["commit_hexsha"] for v in shown if v.get("registrations")}
    return dict(sorted(found.items(), key=lambda item: semver(item[0])))


def semver(version: str) -> tuple:
    """v1.10.0 -> (1, 10, 0), for ordering (GTO's versions are vMAJOR.MINOR.PATCH)."""
    return tuple(int(part) if part.isdigit() else part for part in version.lstrip("v").split("."))


def assign(repo: Path, names: list[str], version: str, stage: str, message: str) -> list[str]:
    """Assign `stage` to `version` of each artifact where it is not there now; a version that held the stage before
    (a rollback) gets a new assignment tag too (GTO's force), as GTO numbers them."""
    from gto import api

    tags, current = [], gto(api.show, repo)
    for name in names:
        if current.get(name, {}).get("stage", {}).get(stage) == version:
            continue
        gto(api.assign, repo, name, stage, version=version, message=message, force=True)
        tags.append(latest_assignment(repo, name, stage))
    return tags


def latest_assignment(repo: Path, name: str, stage: str) -> str:
    """The newest `name#stage#N` tag (GTO numbers them)."""
    found = vcs.git(repo, "tag", "--list", f"{name}#{stage}#*").stdout.split()
    return max(found, key=lambda tag: int(tag.rsplit("#", 1)[1]))


def push(repo: Path, remote: str, tags: list[str]) -> None:
    done = vcs.git(repo, "push", "-q", remote, *(f"refs/tags/{t}" for t in tags), timeout=300)
    if done.returncode != 0:
        raise ReleaseError(f"the tags were made here but not pushed to {remote!r}: {last_line(done)}")


def identity(repo: Path) -> dict[str, str]:
    """The tagger, as git itself would name it (config or GIT_COMMITTER_* variables)."""
    done = vcs.git(repo, "var", "GIT_COMMITTER_IDENT")
    if done.returncode != 0:
        raise ReleaseError("git knows no committer identity: set user.name and user.email (git config)")
    name, _, rest = done.stdout.partition(" <")
    return {"author": name.strip(), "author_email": rest.partition(">")[0]}


def gto(call, repo: Path, *args, **kwargs):
    """A GTO API call in `repo` (tags by git's identity); its refusals (a version that exists, a bad name) become
    one line."""
    from gto.exceptions import GTOException

    if call.__name__ in ("register", "assign"):
        kwargs.update(identity(repo))
    try:
        return call(repo, *args, **kwargs)
    except GTOException as e:
        raise ReleaseError(f"gto: {e}") from None


def last_line(done) -> str:
    lines = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"
