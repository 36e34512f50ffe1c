"""The model registry: versions released as GTO tags into a real bare git origin, weights in a real DVC remote (a
local folder, and the SeaweedFS S3 server of the remote tests), fetched by `dvc artifacts get` from an empty folder
with no clone; every refusal of `mnist-gan release` / `promote`, and DVC's own answers to what does not exist."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from mnist_gan.release import expected_labels
from mnist_gan.storage import file_digest
from tests.conftest import DVC, KEY, ROOT, SECRET, committed_copy, console_script, run, set_params

pytestmark = pytest.mark.slow


def test_the_declared_labels_are_what_params_yaml_trains():
    declared = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    wanted = expected_labels(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert {spec["path"] for spec in declared.values()} == {
        "models/generator.pt",
        "models/generator.onnx",
        "models/generator.safetensors",
    }
    for spec in declared.values():
        assert wanted <= set(spec["labels"]) and spec["type"] == "model" and spec["desc"]


def published(small_repo, tmp_path: Path, store: Path) -> tuple[Path, str]:
    """A copy of the reproduced repo whose committed default DVC remote is `store` and whose git remote `origin`
    is a new bare repository; returns (repo, origin's file:// URL). Nothing is pushed to the DVC remote yet."""
    repo = committed_copy(small_repo[0], tmp_path / "repo")
    run(DVC + ["remote", "modify", "local", "url", str(store)], repo)
    run(["git", "commit", "-qam", "the DVC remote consumers read"], repo)
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], repo)
    run(["git", "push", "-q", "origin", "main"], repo)
    return repo, f"file://{origin}"


def mnist_gan(capsys, repo: Path, *argv: str) -> tuple[int, str]:
    return console_script(capsys, *argv, "--repo", str(repo))


def get(url: str, folder: Path, name: str, *how: str, env: dict | None = None):
    """`dvc artifacts get URL NAME ...` in `folder` (no repository there), into NAME's own file name."""
    folder.mkdir(parents=True, exist_ok=True)
    return run(DVC + ["artifacts", "get", url, name, *how, "-o", f"{name}.out"], folder, check=False, env=env)


def refused(code: int, err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(w in lines[0] for w in words), lines[0]


def test_release_promote_and_fetch_with_no_clone(small_repo, tmp_path, capsys):
    from tests.test_serve import start_server

    repo, url = published(small_repo, tmp_path, tmp_path / "store")
    v1 = file_digest(repo / "models" / "generator.pt")

    # the weights are not in the remote yet, then the tree is dirty, then the pipeline is stale: nothing is tagged
    refused(*mnist_gan(capsys, repo, "release", "--version", "v1.0.0"), "not in the DVC remote", "dvc push")
    run(DVC + ["push"], repo)
    (repo / "README.md").write_text("edited\n")
    refused(*mnist_gan(capsys, repo, "release", "--version", "v1.0.0"), "uncommitted changes", "README.md")
    run(["git", "checkout", "README.md"], repo)
    assert run(["git", "tag"], repo).stdout == ""

    code, _ = mnist_gan(capsys, repo, "release", "--version", "v1.0.0", "--stage", "prod", "--push")
    assert code == 0
    tags = run(["git", "ls-remote", "--tags", url], tmp_path).stdout
    assert "refs/tags/generator@v1.0.0" in tags and "refs/tags/generator-onnx#prod#1" in tags
    message = run(["git", "tag", "-l", "-n1", "generator@v1.0.0"], repo).stdout
    assert "C2ST" in message and "FID" in message, message  # gto show / git show tell the versions apart

    started = time.perf_counter()
    assert get(url, tmp_path / "consumer", "generator", "--stage", "prod").returncode == 0
    local_s = time.perf_counter() - started
    assert file_digest(tmp_path / "consumer" / "generator.out") == v1
    assert get(url, tmp_path / "consumer", "generator", "--rev", "v1.0.0", "--force").returncode == 0
    assert file_digest(tmp_path / "consumer" / "generator.out") == v1

    # a second version: other weights, released with a minor bump and moved to prod
    set_params(repo, seed=7)
    run(DVC + ["repro"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "seed 7"], repo)
    refused(*mnist_gan(capsys, repo, "release", "--bump", "minor"), "not in the DVC remote")
    run(DVC + ["push"], repo)
    assert mnist_gan(capsys, repo, "release", "--bump", "minor", "--stage", "prod", "--push")[0] == 0
    v2 = file_digest(repo / "models" / "generator.pt")
    assert v2 != v1
    assert get(url, tmp_path / "consumer", "generator", "--stage", "prod", "--force").returncode == 0
    assert file_digest(tmp_path / "consumer" / "generator.out") == v2

    # the ONNX file of prod serves digits, with no clone and no torch in the server
    assert get(url, tmp_path / "consumer", "generator-onnx", "--stage", "prod").returncode == 0
    onnx = tmp_path / "consumer" / "generator.onnx"
    (tmp_path / "consumer" / "generator-onnx.out").rename(onnx)
    proc, server = start_server(onnx, cwd=tmp_path / "consumer")
    try:
        with urllib.request.urlopen(f"{server}/generate.png?digit=7&n=4&seed=1", timeout=10) as r:
            assert r.status == 200 and r.read()[:4] == b"\x89PNG"
    finally:
        proc.terminate()
        proc.wait(10)

    # rolling prod back to v1; an unknown version is refused
    refused(*mnist_gan(capsys, repo, "promote", "v9.9.9", "--stage", "prod"), "no version v9.9.9", "v1.0.0, v1.1.0")
    assert mnist_gan(capsys, repo, "promote", "v1.0.0", "--stage", "prod", "--push")[0] == 0
    assert get(url, tmp_path / "consumer", "generator", "--stage", "prod", "--force").returncode == 0
    assert file_digest(tmp_path / "consumer" / "generator.out") == v1

    # versions are git revisions: the compare page reads them
    out = tmp_path / "versions.html"
    code, err = console_script(
        capsys, "compare", "generator@v1.0.0", "generator@v1.1.0", "--out", str(out), "--repo", str(repo)
    )
    assert code == 0 and "generator@v1.1.0" in out.read_text(), err

    # what does not exist, as DVC itself answers: an error naming it, no traceback
    for how, named in ((("--rev", "v9.9.9"), "v9.9.9"), (("--stage", "staging"), "staging")):
        done = get(url, tmp_path / "consumer", "generator", *how, "--force")
        assert done.returncode != 0 and "Traceback" not in done.stderr
        assert named in done.stderr.strip().splitlines()[-1], done.stderr
    done = get(f"file://{tmp_path}/nowhere.git", tmp_path / "consumer", "generator", "--stage", "prod")
    assert done.returncode != 0 and done.stderr.strip().splitlines()[-1].startswith("ERROR: failed to get")
    print(f"\ndvc artifacts get generator --stage prod, default local remote: {local_s:.1f} s")


def test_release_refuses_without_a_git_remote_or_with_a_stale_pipeline(small_repo, tmp_path, capsys):
    repo = committed_copy(small_repo[0], tmp_path / "repo")
    run(DVC + ["remote", "modify", "local", "url", str(tmp_path / "store")], repo)
    run(["git", "commit", "-qam", "remote"], repo)
    run(DVC + ["push"], repo)
    refused(*mnist_gan(capsys, repo, "release"), "no git remote 'origin'", "git remote add")
    # an origin made by `git init --bare` names `master` as its HEAD: with only `main` pushed, a consumer's clone
    # (dvc artifacts get) has nothing to check out
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "master", str(origin)], tmp_path)
    run(["git", "remote", "add", "origin", str(origin)], repo)
    run(["git", "push", "-q", "origin", "main"], repo)
    refused(*mnist_gan(capsys, repo, "release", "--push"), "no default branch a consumer's clone can check out")
    assert run(["git", "ls-remote", "--tags", str(origin)], tmp_path).stdout == ""
    run(["git", "symbolic-ref", "HEAD", "refs/heads/main"], origin)
    set_params(repo, lr=0.0003)  # committed, never reproduced: dvc.lock no longer describes the outputs
    run(["git", "commit", "-qam", "lr"], repo)
    refused(*mnist_gan(capsys, repo, "release"), "not up to date", "train")
    run(["git", "reset", "-q", "--hard", "HEAD~1"], repo)
    run(DVC + ["remote", "modify", "--local", "local", "url", str(tmp_path / "elsewhere")], repo)
    refused(*mnist_gan(capsys, repo, "release"), "config.local", str(tmp_path / "store"))
    assert run(["git", "tag"], repo).stdout == ""


def test_release_and_fetch_through_s3(s3_server, small_repo, tmp_path, capsys, monkeypatch):
    from tests.test_remote import set_s3_remote

    repo, url = published(small_repo, tmp_path, tmp_path / "unused")
    set_s3_remote(repo, s3_server["endpoint"], credentials=False)  # the default remote, endpoint committed
    run(["git", "commit", "-qam", "the S3 remote"], repo)
    credentials = {"AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    run(DVC + ["push"], repo, env=credentials)
    for key, value in credentials.items():  # the release's own `dvc status --cloud` reads the bucket
        monkeypatch.setenv(key, value)
    assert mnist_gan(capsys, repo, "release", "--version", "v1.0.0", "--stage", "prod", "--push")[0] == 0
    started = time.perf_counter()
    done = get(url, tmp_path / "consumer", "generator", "--stage", "prod", env=credentials)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert file_digest(tmp_path / "consumer" / "generator.out") == file_digest(repo / "models" / "generator.pt")
    print(f"\ndvc artifacts get generator --stage prod, S3 (SeaweedFS on 127.0.0.1): {elapsed:.1f} s")
