"""Versioned weights in real remote storage: a real S3 server (SeaweedFS) and the default local remote.

Push from a repo that ran `dvc repro`, clone it, pull only models/generator.pt, check its bytes, sample from
it without running any stage; then stop the server and check that a pull fails fast and clearly.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from mnist_gan.storage import file_digest
from mnist_gan.vcs import experiment_ref
from tests.conftest import BUCKET, DVC, KEY, SECRET, committed_copy, free_port, output_md5, run


@pytest.fixture
def repo_a(small_repo, tmp_path):
    """A copy of the reproduced repo (cache included) with its current state committed."""
    return committed_copy(small_repo[0], tmp_path / "a")


def clone(repo: Path, dest: Path) -> Path:
    run(["git", "clone", "-q", str(repo), str(dest)], dest.parent)
    return dest


def pull_generator_and_sample(repo_b: Path, expected_sha: str) -> float:
    started = time.perf_counter()
    run(DVC + ["pull", "models/generator.pt"], repo_b)
    elapsed = time.perf_counter() - started
    assert file_digest(repo_b / "models" / "generator.pt") == expected_sha
    assert not (repo_b / "data" / "processed").exists(), "pulled more than the generator"
    assert not (repo_b / "models" / "discriminator.pt").exists()
    run(
        [sys.executable, "-m", "stages.sample", "--weights", "models/generator.pt", "--n", "16", "--out", "grid.png"],
        repo_b,
    )
    assert (repo_b / "grid.png").read_bytes()[:4] == b"\x89PNG"
    return elapsed


def set_s3_remote(repo: Path, endpoint: str, credentials: bool = True) -> None:
    run(DVC + ["remote", "add", "-f", "-d", "s3", f"s3://{BUCKET}/mnist-gan"], repo)
    run(DVC + ["remote", "modify", "s3", "endpointurl", endpoint], repo)
    if credentials:  # --local: .dvc/config.local, never committed
        run(DVC + ["remote", "modify", "--local", "s3", "access_key_id", KEY], repo)
        run(DVC + ["remote", "modify", "--local", "s3", "secret_access_key", SECRET], repo)


@pytest.mark.slow
def test_s3_push_clone_pull_generator_only(s3_server, repo_a, tmp_path):
    set_s3_remote(repo_a, s3_server["endpoint"])
    run(["git", "commit", "-qam", "use the s3 remote"], repo_a)
    assert "access_key_id" not in (repo_a / ".dvc" / "config").read_text()
    started = time.perf_counter()
    run(DVC + ["push"], repo_a)
    push_s = time.perf_counter() - started

    repo_b = clone(repo_a, tmp_path / "b")
    set_s3_remote(repo_b, s3_server["endpoint"])
    pull_s = pull_generator_and_sample(repo_b, file_digest(repo_a / "models" / "generator.pt"))
    print(f"\nS3 (SeaweedFS on 127.0.0.1): dvc push {push_s:.1f} s, dvc pull models/generator.pt {pull_s:.1f} s")


@pytest.mark.slow
def test_unreachable_s3_fails_fast_and_loses_nothing(s3_server, repo_a, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    set_s3_remote(repo_a, dead)
    before = file_digest(repo_a / "models" / "generator.pt")
    for command in (["push"], ["pull", "models/generator.pt", "--force"]):
        started = time.perf_counter()
        done = run(DVC + command, repo_a, check=False)
        elapsed = time.perf_counter() - started
        assert done.returncode != 0
        assert "ERROR" in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert elapsed < 20, f"dvc {command[0]} took {elapsed:.1f} s to fail"
    assert file_digest(repo_a / "models" / "generator.pt") == before
    assert "up to date" in run(DVC + ["status"], repo_a).output


@pytest.mark.slow
def test_default_local_remote_round_trip(repo_a, tmp_path):
    config = (repo_a / ".dvc" / "config").read_text()
    assert "remote = local" in config and "~/.cache/mnist-gan/dvc-storage" in config
    store = tmp_path / "store"  # point the committed default at a temp folder, in the untracked config.local
    run(DVC + ["remote", "modify", "--local", "local", "url", str(store)], repo_a)
    run(DVC + ["push"], repo_a)
    repo_b = clone(repo_a, tmp_path / "b")
    run(DVC + ["remote", "modify", "--local", "local", "url", str(store)], repo_b)
    pull_generator_and_sample(repo_b, file_digest(repo_a / "models" / "generator.pt"))


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["wrong credentials", "missing bucket"])
def test_remote_faults_fail_clearly_and_fast(s3_server, repo_a, fault):
    set_s3_remote(repo_a, s3_server["endpoint"])
    if fault == "wrong credentials":
        run(DVC + ["remote", "modify", "--local", "s3", "secret_access_key", "not-the-secret"], repo_a)
    else:
        run(DVC + ["remote", "modify", "s3", "url", "s3://no-such-bucket/mnist-gan"], repo_a)
    started = time.perf_counter()
    done = run(DVC + ["push"], repo_a, check=False)
    elapsed = time.perf_counter() - started
    assert done.returncode != 0, done.stdout
    assert "ERROR" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert elapsed < 20
    print(f"\n{fault}: {[line for line in done.stderr.splitlines() if line.startswith('ERROR')][:1]} ({elapsed:.1f} s)")
    assert "up to date" in run(DVC + ["status"], repo_a).output


@pytest.mark.slow
def test_exp_push_and_pull_share_an_experiment_with_its_weights(experiments, tmp_path):
    """`dvc exp push <git-remote> <exp>` in one clone, `dvc exp pull` + `dvc exp apply` in another: the
    experiment's own generator arrives (`slow`, not the baseline's that the second clone starts from)."""
    repo_a = tmp_path / "a"
    shutil.copytree(experiments[0], repo_a, symlinks=True)  # as it is: experiments of its baseline commit
    store, shared = tmp_path / "store", tmp_path / "shared.git"
    run(["git", "init", "-q", "--bare", str(shared)], tmp_path)
    run(DVC + ["remote", "modify", "--local", "local", "url", str(store)], repo_a)
    run(["git", "remote", "add", "origin", str(shared)], repo_a)
    run(["git", "push", "-q", "origin", "HEAD:main"], repo_a)
    expected = output_md5(repo_a, experiment_ref(repo_a, "slow"), "models/generator.pt")
    assert expected != output_md5(repo_a, "main", "models/generator.pt")
    run(DVC + ["exp", "push", "origin", "slow"], repo_a)  # git refs to origin, outputs to the DVC remote

    repo_b = tmp_path / "b"
    run(["git", "clone", "-q", "-b", "main", str(shared), str(repo_b)], tmp_path)
    run(DVC + ["remote", "modify", "--local", "local", "url", str(store)], repo_b)
    run(DVC + ["exp", "pull", "origin", "slow"], repo_b)
    assert "slow" in run(DVC + ["exp", "list", "--all-commits"], repo_b).output
    run(DVC + ["exp", "apply", "slow"], repo_b)
    run(DVC + ["pull", "models/generator.pt"], repo_b)
    assert file_digest(repo_b / "models" / "generator.pt", "md5") == expected


@pytest.mark.slow
def test_fresh_clone_pulls_the_export_alone_and_serves_it(repo_a, tmp_path):
    """docs/serving.md: clone, `dvc pull` the ONNX file and the card, `mnist-gan serve` answers."""
    import urllib.request

    from tests.test_serve import start_server

    store = tmp_path / "store"
    run(DVC + ["remote", "modify", "--local", "local", "url", str(store)], repo_a)
    run(DVC + ["push"], repo_a)
    repo_b = clone(repo_a, tmp_path / "b")
    run(DVC + ["remote", "modify", "--local", "local", "url", str(store)], repo_b)
    run(DVC + ["pull", "models/generator.onnx", "models/MODEL_CARD.md"], repo_b)
    assert file_digest(repo_b / "models" / "generator.onnx") == file_digest(repo_a / "models" / "generator.onnx")
    assert not (repo_b / "models" / "generator.pt").exists(), "pulled more than the export"
    proc, url = start_server(repo_b / "models" / "generator.onnx", cwd=repo_b)
    try:
        with urllib.request.urlopen(f"{url}/model", timeout=10) as r:
            info = json.load(r)  # the session's repo holds whatever the last experiment applied: either kind
        assert info["metrics"]["generated"]["fid"] > 0
        query = "digit=7&n=16&seed=3" if info["digits"] else "n=16&seed=3"
        with urllib.request.urlopen(f"{url}/generate.png?{query}", timeout=10) as r:
            assert r.status == 200 and r.read()[:4] == b"\x89PNG"
    finally:
        proc.terminate()
        proc.wait(10)
