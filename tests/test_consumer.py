"""A consumer with no clone, end to end: a wheel of this checkout installed into a fresh environment outside any
checkout, versions fetched by `dvc artifacts get` from a bare git origin into an empty folder, then `mnist-gan
sample` on the generator and `mnist-gan serve` on its ONNX twin.

The fresh environment borrows the dependencies (torch, DVC, the serve extra's fastapi and uvicorn, ...) from the test
environment through a path file, so the test costs seconds instead of a 5 GB install; the package itself, its page
and its console script come from the wheel alone (checked: `mnist_gan` imports from the fresh environment)."""

from __future__ import annotations

import os
import site
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DVC, copy_project, run
from tests.test_release import mnist_gan, published
from tests.test_serve import start_server

pytestmark = pytest.mark.slow


def fresh_environment(root: Path) -> Path:
    """A new venv at `root` whose dependencies are the test environment's (a .pth line, after its own packages);
    returns its python."""
    run([sys.executable, "-m", "venv", "--without-pip", root], root.parent)
    python = root / "bin" / "python"
    own = run([python, "-c", "import site; print(site.getsitepackages()[0])"], root.parent).stdout.strip()
    Path(own, "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return python


def test_a_consumer_with_no_clone_samples_and_serves_a_released_version(small_repo, tmp_path, capsys):
    # the producer: a release with a stage, pushed to a bare origin; the weights in the committed DVC remote
    repo, url = published(small_repo, tmp_path, tmp_path / "store")
    run(DVC + ["push"], repo)
    code, err = mnist_gan(capsys, repo, "release", "--version", "v1.0.0", "--stage", "prod", "--push")
    assert code == 0, err

    # the package as a wheel, built from a copy of the checkout, installed into a fresh environment
    source = copy_project(tmp_path / "source")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path, source])
    wheel = next(tmp_path.glob("mnist_gan-*.whl"))
    python = fresh_environment(tmp_path / "env")
    clean = {"PYTHONPATH": "", "VIRTUAL_ENV": str(tmp_path / "env")}
    # --force-reinstall: the borrowed environment holds this version as an editable install (pip leaves it there)
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--force-reinstall"]
    run([*pip, wheel], tmp_path, env=clean)
    where = run([python, "-c", "import mnist_gan; print(mnist_gan.__file__)"], tmp_path, env=clean).stdout
    assert where.startswith(str(tmp_path / "env")), where

    # the consumer: an empty folder, the two gets, then the installed console script on what they fetched
    consumer = tmp_path / "consumer"
    consumer.mkdir()
    for artifact in ("generator", "generator-onnx"):
        run([python, "-m", "dvc", "artifacts", "get", url, artifact, "--stage", "prod"], consumer, env=clean)
    assert sorted(p.name for p in consumer.iterdir()) == ["generator.onnx", "generator.pt"]
    cli = tmp_path / "env" / "bin" / "mnist-gan"
    done = run([cli, "sample", "--weights", "generator.pt", "--digit", "7", "--n", "16", "--out", "sevens.png"],
               consumer, env=clean)  # fmt: skip
    assert "sample: 16 images" in done.stdout and (consumer / "sevens.png").read_bytes()[:4] == b"\x89PNG"
    env = {**os.environ, **clean, "PATH": f"{tmp_path / 'env' / 'bin'}:/usr/bin:/bin"}
    server, base = start_server(Path("generator.onnx"), cwd=consumer, command=cli, env=env)
    try:
        with urllib.request.urlopen(f"{base}/generate.png?digit=7&n=4&seed=1", timeout=10) as r:
            assert r.read()[:4] == b"\x89PNG"
    finally:
        server.terminate()
        server.wait(10)
