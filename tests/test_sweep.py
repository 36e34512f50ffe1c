"""`mnist-gan sweep` with the real engine: Ray nodes as separate processes on 127.0.0.1, a bare git repo as the
shared git remote, a shared local folder as the DVC remote, the tiny pipeline of `small_repo`; no mock anywhere."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from harness.ray_cluster import ENV, LOOPBACK, Cluster, free_ports, namespaces
from mnist_gan.sweep.grid import expand
from mnist_gan.sweep.guard import STOPPED, guarded, log_of
from mnist_gan.vcs import experiments
from tests.conftest import DVC, ROOT, committed_copy, console_script, output_md5, run

SWEEP = [sys.executable, "-m", "mnist_gan.cli", "sweep"]
# trials train without the per-epoch FID (`dvc exp run train`: what comes after it in the DAG is not what these tests
# are about), and one test also evaluates, for the FID a trial reports: a trial is then mostly the sweep's overhead
QUICK = ["--stage", "train", "-S", "quality_samples=0"]
SCORED = ["--stage", "evaluate", "-S", "quality_samples=0"]


@pytest.fixture(scope="module")
def project(small_repo, tmp_path_factory) -> Path:
    """The reproduced tiny project with a bare git remote `origin` and a shared folder as its default DVC remote."""
    root = tmp_path_factory.mktemp("sweep")
    repo = committed_copy(small_repo[0], root / "repo")
    run(DVC + ["remote", "add", "-f", "-d", "shared", root / "dvc-storage"], repo)
    run(["git", "commit", "-qam", "a DVC remote every node sees"], repo)
    run(["git", "init", "-q", "--bare", "-b", "main", root / "origin.git"], repo)
    run(["git", "remote", "add", "origin", root / "origin.git"], repo)
    run(["git", "push", "-q", "origin", "HEAD:refs/heads/main"], repo)
    return repo


@pytest.fixture(scope="module")
def cluster():
    """Two worker nodes in a network namespace of their own (loopback only); skipped where none can be made."""
    why = namespaces()
    if why is not None:
        pytest.skip(f"the test Ray cluster runs in a network namespace of its own: {why}")
    with Cluster(workers=2) as c:
        # every process of every node listens on the loopback only (outside its namespace, Ray 2.60 binds the
        # machine's address and ::): checked once, before any test uses the cluster
        sockets = c.listening()
        names, addresses = {name for name, _ in sockets}, {ip for _, ip in sockets}
        assert names >= {"gcs_server", "raylet"} and addresses <= LOOPBACK, f"the test cluster listens on {sockets}"
        yield c


def on_cluster(cluster: Cluster) -> list[str]:
    """The options of a sweep on the test cluster: its address, the bare repo every node sees, the shared folder."""
    return ["--address", cluster.address, "--git-remote", "origin", "--shared-storage"]


def sweep(repo: Path, *args, check: bool = False, cluster: Cluster | None = None, env: dict | None = None, **kwargs):
    """The driver as a process; with `cluster`, inside the cluster's namespace and with its token (or `env`)."""
    cmd = [*(cluster.enter if cluster else []), *SWEEP, *args]
    env = env or (cluster.env if cluster else ENV)
    return run(cmd, repo, check=check, env=env, timeout=900, **kwargs)


def report(path: Path) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads(path.read_text())}


def experiment_refs(git_dir: Path) -> list[str]:
    return sorted(ref for ref, _ in experiments(git_dir).values())


def exp_show(repo: Path) -> dict[str, dict]:
    """{experiment name: its data} from `dvc exp show --json` (params and metrics)."""
    rows = json.loads(run(DVC + ["exp", "show", "--json"], repo).stdout)
    out = {}
    for row in rows:
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs") or []:
                if rev.get("name"):
                    out[rev["name"]] = rev
    return out


def metric(shown: dict[str, dict], name: str, *keys: str) -> float:
    """A metric of experiment `name` from `exp_show`: ("train", "loss_d") or ("generated", "fid")."""
    stage = "evaluate" if keys[0] == "generated" else "train"
    value = shown[name]["data"]["metrics"][f"results/{stage}/metrics.json"]["data"]
    for key in keys:
        value = value[key]
    return value


def test_the_grid_is_the_one_dvc_queues(project):
    """DVC's own parser, pinned: `dvc exp run --queue -S ...` queues exactly the trials `expand` makes, in order,
    and a list value survives as written."""
    settings = ["lr=0.0001,0.0002", "batch_size=32,64", "g_hidden=[256,256]"]
    trials = expand(settings, "pin")
    assert [t.overrides for t in trials] == [
        ("lr=0.0001", "batch_size=32", "g_hidden=[256,256]"),
        ("lr=0.0001", "batch_size=64", "g_hidden=[256,256]"),
        ("lr=0.0002", "batch_size=32", "g_hidden=[256,256]"),
        ("lr=0.0002", "batch_size=64", "g_hidden=[256,256]"),
    ]
    queued = committed_copy(project, project.parent / "queued")
    run(DVC + ["exp", "run", "--queue", "-n", "pin", *[a for s in settings for a in ("-S", s)]], queued)
    shown = exp_show(queued)
    for t in trials:
        params = shown[t.name]["data"]["params"]["params.yaml"]["data"]
        assert (params["lr"], params["batch_size"], params["g_hidden"]) == (
            float(t.overrides[0].split("=")[1]),
            int(t.overrides[1].split("=")[1]),
            [256, 256],
        )


def running_with(marker: str) -> list[str]:
    """Command lines of the live processes whose command line holds `marker`."""
    return [cmd for p in psutil.process_iter() if marker in (cmd := command_line(p))]


@pytest.mark.parametrize("how", ["worker killed with its process group", "relay told to stop"])
def test_the_guard_stops_every_process_of_its_command_and_removes_the_folder(tmp_path, how):
    """The guard without Ray. A stand-in worker (a process group of its own, as Ray starts workers) runs the guard
    over a command whose processes hide: one in the background, one in a session of its own. Then either what Ray
    does when a worker exits (SIGKILL to the worker's whole process group) or what a cancelled trial does (SIGTERM to
    the relay): nothing of the command runs within seconds, and the trial's folder and log are gone."""
    marker = f"{secrets.randbelow(10**6) + 10**6}"  # sleep durations no other process uses
    folder = tmp_path / "mnist-gan-g-1-x"
    folder.mkdir()
    log_of(folder).write_text("")
    script = f"sleep {marker}1 & setsid sleep {marker}2 & sleep {marker}3"
    cmd = guarded(["sh", "-c", script], folder, raylet=os.getpid())  # the raylet: this process, alive throughout
    worker = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)", *cmd],
        start_new_session=True,
    )
    deadline = time.time() + 30
    while len(running_with(marker)) < 3:
        assert time.time() < deadline and worker.poll() is None, running_with(marker)
        time.sleep(0.05)
    if how == "relay told to stop":
        psutil.Process(worker.pid).children()[0].terminate()
        assert worker.wait(timeout=20) == STOPPED  # the relay's code, the keeper's
    else:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=20)
    deadline = time.time() + 10
    while (left := running_with(marker)) or folder.exists():
        assert time.time() < deadline, (left, folder.exists())
        time.sleep(0.05)
    assert not log_of(folder).exists()


def trial_processes(folder_hint: str) -> list[psutil.Process]:
    """Live processes of a trial: its guard names its folder; its stages run with the folder as working directory.
    A zombie (exited, not yet reaped by its parent) runs nothing and is not counted."""
    found = []
    for p in psutil.process_iter(["cmdline", "cwd", "status"]):
        cmd, cwd = " ".join(p.info["cmdline"] or []), p.info["cwd"] or ""
        if (folder_hint in cmd or folder_hint in cwd) and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def trial_name(folder: str) -> str:
    """The trial a working folder belongs to: mnist-gan-grid-3-k2j8x -> grid-3."""
    return "-".join(folder.split("-")[2:4])


def command_line(p: psutil.Process) -> str:
    """The command line of `p`; "" once it has exited (gone, or a zombie): it then runs nothing."""
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


@pytest.mark.slow
def test_the_embedded_default_runs_a_two_trial_sweep_a_failing_trial_is_reported_and_the_other_lands(project, tmp_path):
    """No address: a Ray instance of its own; no git remote: the repo itself; the project's default DVC remote. One
    trial fails (a batch larger than the data): reported with its log's tail, nothing of it pushed, exit code 1,
    while the other lands."""
    local = committed_copy(project, tmp_path / "local")
    out = tmp_path / "report.json"
    done = sweep(local, *SCORED, "-S", "batch_size=64,4096", "--name", "here", "--report", out)
    assert done.returncode == 1 and out.is_file(), done.output
    results = report(out)
    assert results["here-1"]["status"] == "done" and results["here-2"]["status"] == "failed"
    assert "exceeds the 512 training images" in results["here-2"]["log_tail"]
    assert "here-2 failed" in done.output and "exceeds the 512 training images" in done.output
    refs = [r.rsplit("/", 1)[-1] for r in experiment_refs(local)]
    assert "here-1" in refs and "here-2" not in refs  # nothing of the failed trial was pushed
    shown = exp_show(local)
    assert "here-2" not in shown
    # the FID the trial reported (and the final table shows) is the experiment's own, as `dvc exp show` has it
    fid = metric(shown, "here-1", "generated", "fid")
    assert fid == pytest.approx(results["here-1"]["metrics"]["fid"]) and f"{fid:.2f}" in done.output


def one_line_refusal(done) -> str:
    assert done.returncode == 2, done.output
    # Ray's core logs one warning when it finds no route out, as in the test cluster's namespace (loopback only)
    lines = [line for line in done.stderr.strip().splitlines() if "network_util.cc" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.output, done.output
    return lines[0]


def refusal_in_process(capsys, repo: Path, *args: str) -> str:
    """The one-line refusal of `mnist-gan sweep ...`, in this process: what is refused before any Ray cluster is
    reached needs no driver process of its own."""
    code, err = console_script(capsys, "sweep", "--repo", str(repo), *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def test_settings_remotes_and_a_dirty_tree_are_refused_in_one_line_before_ray(project, capsys, tmp_path):
    origin = project.parent / "origin.git"
    before = experiment_refs(origin)
    cases = [
        (["-S", "nope=1"], "params.yaml has no key nope"),
        (["-S", "lr=0.0001,7"], "trial 2 (lr=7): params.yaml: lr = 7 is not allowed"),
        (["-S", "lr=0.0001", "--git-remote", str(tmp_path / "no-such.git")], "cannot reach the git remote"),
        (["-S", "lr=0.0001", "--dvc-remote", "nope"], "no DVC remote named 'nope'"),
    ]
    for args, expected in cases:
        assert expected in refusal_in_process(capsys, project, *args, "--name", "refused"), args
    dirty = committed_copy(project, tmp_path / "dirty")
    (dirty / "params.yaml").write_text((dirty / "params.yaml").read_text() + "\n")
    assert "uncommitted changes (params.yaml)" in refusal_in_process(capsys, dirty, "-S", "lr=0.0001")
    assert experiment_refs(origin) == before  # no trial ran


@pytest.mark.slow
def test_an_unreachable_cluster_or_remote_is_refused_in_one_line_before_any_trial(project, cluster, tmp_path):
    """The driver as a process: what only a connection to the cluster tells."""
    origin = project.parent / "origin.git"
    before = experiment_refs(origin)
    closed = free_ports(1)[0]
    cases = [
        (["--address", f"127.0.0.1:{closed}"], f"cannot reach the Ray cluster at 127.0.0.1:{closed}", cluster.env),
        (["--address", cluster.address], "is a folder of this machine", cluster.env),  # no --shared-storage
        (on_cluster(cluster), "refused this driver's token", {**cluster.env, "RAY_AUTH_TOKEN": "0" * 64}),
    ]
    for args, expected, env in cases:
        refusal = one_line_refusal(
            sweep(project, "-S", "lr=0.0001", *args, "--name", "refused", cluster=cluster, env=env)
        )
        assert expected in refusal, (args, refusal)
    without = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_TOKEN"}
    refusal = one_line_refusal(sweep(project, "-S", "lr=0.0001", *on_cluster(cluster), cluster=cluster, env=without))
    assert "RAY_AUTH_TOKEN=<token> or RAY_AUTH_TOKEN_PATH=<file>" in refusal
    # a DVC remote nothing answers (an S3 endpoint on a closed port)
    down = committed_copy(project, tmp_path / "down")
    run(DVC + ["remote", "add", "down", "s3://bucket/x"], down)
    run(DVC + ["remote", "modify", "down", "endpointurl", f"http://127.0.0.1:{closed}"], down)
    run(["git", "commit", "-qam", "an unreachable remote"], down)
    refusal = one_line_refusal(
        sweep(
            down, "-S", "lr=0.0001", "--dvc-remote", "down", *on_cluster(cluster), "--name", "refused", cluster=cluster
        )
    )
    assert "cannot push to the DVC remote 'down'" in refusal
    assert experiment_refs(origin) == before  # no trial ran


@pytest.mark.slow
def test_the_embedded_default_listens_on_the_loopback_only_and_writes_no_token(tmp_path):
    """The driver's local Ray (no --address): bound to 127.0.0.1, token authentication on, nothing in ~/.ray."""
    code = (
        "import json, os, psutil, time; from mnist_gan.sweep.driver import connect\n"
        "ray = connect(None, 1); time.sleep(2)\n"
        "from harness.ray_cluster import listening\n"
        "mine = [psutil.Process(), *psutil.Process().children(recursive=True)]\n"
        "print(json.dumps({'sockets': sorted(listening(mine)), 'auth': os.environ.get('RAY_AUTH_MODE')}))\n"
        "ray.shutdown()"
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {**ENV, "HOME": str(home), "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}  # whatever the caller's PYTHONPATH
    done = run([sys.executable, "-c", code], tmp_path, env=env)
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert {name for name, _ in seen["sockets"]} >= {"gcs_server", "raylet"}, seen
    assert {ip for _, ip in seen["sockets"]} <= LOOPBACK, seen
    assert seen["auth"] == "token" and not (home / ".ray").exists()


def test_dry_run_prints_the_trials(project):
    done = sweep(project, "-S", "lr=0.0001,0.0002", "-S", "g_hidden=[64,64]", "--name", "dry", "--dry-run", check=True)
    assert done.stdout.splitlines() == [
        "dry-1: dvc exp run -n dry-1 -S lr=0.0001 -S g_hidden=[64,64]",
        "dry-2: dvc exp run -n dry-2 -S lr=0.0002 -S g_hidden=[64,64]",
    ]


LONG = ["-S", "epochs=100000"]  # hours of training on the tiny data: no trial can end by itself inside a test


def training(prefix: str) -> set[str]:
    """The trials (names) whose train stage runs now, among the sweep's folders named `prefix...`."""
    names = set()
    for p in trial_processes(prefix):
        try:
            if "stages.train" in command_line(p):
                names.add(trial_name(Path(p.cwd()).name))
        except psutil.Error:
            pass
    return names


def trial_folders(name: str) -> set[Path]:
    """The working folders (and logs) of sweep `name`'s trials on this machine's nodes."""
    return set(Path(tempfile.gettempdir()).glob(f"mnist-gan-{name}-*"))


def interrupted_sweep(repo: Path, log: Path, signum: int, ready, *args, cluster: Cluster | None = None, **popen):
    """`mnist-gan sweep *QUICK *args` as a process, sent `signum` once `ready()` holds: (exit code, output, the
    trial folders that were there before). The trials start one by one on 2 cores and a node of one CPU may train one
    only after another ends: up to 10 min."""
    before = trial_folders(args[args.index("--name") + 1])
    with open(log, "w") as out:
        driver = subprocess.Popen(
            [*(cluster.enter if cluster else []), *SWEEP, *QUICK, *args],
            cwd=repo,
            env=cluster.env if cluster else ENV,
            stdout=out,
            stderr=subprocess.STDOUT,
            **popen,
        )
        deadline = time.time() + 600
        while not ready():
            if driver.poll() is not None or time.time() > deadline:
                driver.kill()
                pytest.fail(f"the trials never got ready for the signal:\n{log.read_text()}")
            time.sleep(0.2)
        driver.send_signal(signum)
        driver.wait(timeout=120)
    return driver.returncode, log.read_text(), before


def assert_stopped(name: str, cancelled: list[str], report_path: Path, before: set[Path], *repos: Path) -> None:
    """No process or folder of sweep `name`'s trials is left (beyond the folders `before` it), no experiment of a
    cancelled trial is in `repos`, and each cancelled trial stopped itself: its result came from its node, not from
    the driver giving up on it (a force-cancel)."""
    deadline = time.time() + 10  # a killed process can take a moment to be reaped
    while (left := [cmd for p in trial_processes(f"mnist-gan-{name}-") if (cmd := command_line(p))]) and (
        time.time() < deadline
    ):
        time.sleep(0.5)
    assert left == [], f"processes of the cancelled trials are still running: {left}"
    assert trial_folders(name) - before == set()
    for repo in repos:
        names = [r.rsplit("/", 1)[-1] for r in experiment_refs(repo)]
        assert not set(cancelled) & set(names), (repo, names)
    results = report(report_path)
    for trial in cancelled:
        assert results[trial]["status"] == "cancelled" and results[trial]["node"], results[trial]
        assert results[trial]["log_tail"] == "", results[trial]


@pytest.mark.slow
def test_ctrl_c_on_a_cluster_stops_the_running_trials_and_keeps_the_landed_one(project, cluster, tmp_path):
    """Three trials on two worker nodes: the first trains one epoch and lands, the two others train for hours.
    SIGINT once the first is in the git remote (a trial that is pushing lands) and both others train, to a driver
    started with SIGINT ignored, as a background job of a non-interactive shell (CI) is: exit 130 with one line
    naming the cancelled trials, their processes gone from the nodes, nothing of them in the git remote or the
    clone, and the landed trial pulled."""
    origin = project.parent / "origin.git"

    def ready() -> bool:
        landed = {r.rsplit("/", 1)[-1] for r in experiment_refs(origin)}
        return "stop-1" in landed and training("mnist-gan-stop-") >= {"stop-2", "stop-3"}

    out = tmp_path / "report.json"
    code, output, before = interrupted_sweep(
        project,
        tmp_path / "driver.log",
        signal.SIGINT,
        ready,
        "-S",
        "epochs=1,100000,100000",
        "--name",
        "stop",
        *on_cluster(cluster),
        "--report",
        out,
        cluster=cluster,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert code == 130, output
    assert_stopped("stop", ["stop-2", "stop-3"], out, before, origin, project)
    last = output.strip().splitlines()[-1]  # the driver's last word: one line
    assert last.startswith("interrupted (SIGINT): cancelled stop-2, stop-3, their processes stopped in"), output
    assert last.endswith("1 trial(s) that had landed pulled"), output
    assert report(out)["stop-1"]["status"] == "done"
    assert "stop-1" in exp_show(project)  # pulled


@pytest.mark.slow
def test_sigterm_on_the_embedded_default_stops_its_trials(project, tmp_path):
    """No address: the driver's own Ray. SIGTERM once both trials train: exit 143, every process of the trials gone,
    no experiment of theirs in the repo (its own git remote)."""
    local = committed_copy(project, tmp_path / "local")
    out = tmp_path / "report.json"
    code, output, before = interrupted_sweep(
        local,
        tmp_path / "driver.log",
        signal.SIGTERM,
        lambda: training("mnist-gan-halt-") == {"halt-1", "halt-2"},
        "-S",
        "seed=7,8",
        *LONG,
        "--name",
        "halt",
        "--report",
        out,
    )
    assert code == 143, output
    assert_stopped("halt", ["halt-1", "halt-2"], out, before, local)
    last = output.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGTERM): cancelled halt-1, halt-2, their processes stopped in"), output


@pytest.mark.slow
def test_a_2x2_grid_on_two_nodes_lands_four_experiments_once_each_though_a_node_dies_mid_trial(
    project, cluster, tmp_path
):
    """Four trials on two worker nodes. Once a node has finished a trial and trains its second, that node is killed
    (its raylet and all): its trial reruns on the survivor and lands once. All four land, pushed by the nodes that
    ran them, and a fresh clone of the git remote pulls each with its own generator. The module's last test: it
    leaves the cluster one worker node (one cluster at a time on this machine)."""
    out = tmp_path / "report.json"
    driver = subprocess.Popen(
        [
            *cluster.enter,
            *SWEEP,
            *QUICK,
            "-S",
            "lr=0.0001,0.0003",
            "-S",
            "batch_size=32,64",
            "--name",
            "grid",
            *on_cluster(cluster),
            "--report",
            str(out),
        ],
        cwd=project,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    trained: list[set[str]] = [set() for _ in cluster.workers]  # the trial folders each node has trained in
    victim, deadline = None, time.time() + 600
    while victim is None and time.time() < deadline and driver.poll() is None:
        for i, node in enumerate(cluster.workers):
            for p in cluster.processes(node):
                try:
                    folder = Path(p.cwd()).name  # mnist-gan-grid-<k>-xxxx: the trial's folder
                except psutil.Error:
                    continue
                if folder.startswith("mnist-gan-grid-") and "stages.train" in command_line(p):
                    trained[i].add(folder)
                    if len(trained[i]) == 2 and victim is None:
                        victim = (i, folder)
        time.sleep(0.2)
    assert victim, f"no node trained a second trial: {trained}"
    dead, folder = victim
    cluster.kill_worker(dead)
    killed, landed_there = trial_name(folder), trial_name(next(f for f in trained[dead] if f != folder))
    deadline = time.time() + 15  # the dead trial's guard polls its raylet every half second
    while (left := [cmd for p in trial_processes(folder) if (cmd := command_line(p))]) and time.time() < deadline:
        time.sleep(0.5)
    assert left == [], f"processes of the killed trial are still running: {left}"
    output, _ = driver.communicate(timeout=900)
    assert driver.returncode == 0, output
    results = report(out)
    names = ["grid-1", "grid-2", "grid-3", "grid-4"]
    assert sorted(results) == names and all(r["status"] == "done" for r in results.values()), results
    assert len({r["node"] for r in results.values()}) == 2, results  # the dead node had landed its first trial
    assert results[killed]["node"] != results[landed_there]["node"], results  # the rerun: on the survivor
    refs = [r.rsplit("/", 1)[-1] for r in experiment_refs(project.parent / "origin.git")]
    assert all(refs.count(name) == 1 for name in names), refs  # the killed trial landed once
    here = exp_show(project)  # the driver's own clone: pulled
    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", project.parent / "origin.git", fresh])
    run(DVC + ["exp", "pull", "origin", *names], fresh)
    shown = exp_show(fresh)
    hashes = set()
    for name in names:
        assert metric(shown, name, "train", "loss_d") == metric(here, name, "train", "loss_d") > 0
        md5 = output_md5(fresh, shown[name]["rev"], "models/generator.pt")
        assert (fresh / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file(), name  # pulled
        hashes.add(md5)
    assert len(hashes) == 4  # four different generators
