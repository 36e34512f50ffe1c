"""One trial, as it runs on a Ray worker: clone the swept commit into a worker-local folder, `dvc exp run --pull`
with the trial's overrides, `dvc exp push` the experiment (git refs to the git remote, outputs to the DVC remote),
return its metrics and node, delete the folder.

A retried trial (Ray reruns it when its node or worker dies) first asks the git remote whether its experiment is
already there, and if so returns that instead of training again: an experiment lands once. The trial's processes
(`dvc exp run` and the stages it starts) run under a guard (`python -m mnist_gan.sweep.trial`) that stops them
(kills their process group, removes the folder) when the Ray worker dies (the kernel signals it: PR_SET_PDEATHSIG)
or the node's raylet does (it polls: a worker can outlive its raylet for a while), so a dead trial leaves nothing
running behind.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mnist_gan.vcs import experiment_ref, remote_experiment_ref, show

LOG_TAIL = 25  # lines of a failed trial's log shown to the user
UPSTREAM = ("fetch", "normalize", "classifier")  # stages no GAN setting reruns: pulled, never recomputed


@dataclass(frozen=True)
class TrialSpec:
    index: int
    name: str  # the experiment's name
    overrides: tuple[str, ...]
    git_url: str  # where the swept commit is (refs/sweeps/<sweep>) and where the experiment goes
    sweep_ref: str
    dvc_remote: str  # the DVC remote's name in the project's .dvc/config
    threads: int  # torch threads of every stage: the trial's CPUs
    board: object = None  # the driver's progress actor (Board), or None
    stages: tuple[str, ...] = ()  # `dvc exp run` targets: reproduce only these and what they need (all if empty)


@dataclass
class TrialResult:
    index: int
    name: str
    status: str  # "done" | "failed"
    node: str = ""  # host name and Ray node id (short)
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)  # results/evaluate/metrics.json's "generated"
    log_tail: str = ""  # the end of the failed command's output
    reused: bool = False  # found already pushed by an earlier attempt
    steps: dict[str, float] = field(default_factory=dict)  # seconds spent: clone, pull, run (the stages), push


def where() -> str:
    try:
        import ray

        node = ray.get_runtime_context().get_node_id()[:8]
    except Exception:  # outside Ray (tests of the trial itself)
        node = "local"
    return f"{socket.gethostname()}/{node}"


def run_guarded(cmd: list[str], cwd: Path, env: dict, log: Path) -> int:
    """`cmd` under the guard below, output appended to `log`; its exit code."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        # the raylet, our Ray worker's parent: the node itself. When it dies the worker may run on for a while,
        # so the guard watches it too
        raylet = os.getppid()
        guard = [sys.executable, "-m", "mnist_gan.sweep.trial", str(cwd), str(raylet), "--", *cmd]
        code = subprocess.run(guard, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if os.getppid() != raylet:
        # our node died under this trial (the guard stopped it): die with it rather than report a failure, so
        # that Ray sees a lost worker and reruns the trial on another node
        os._exit(1)
    return code


def run_trial(spec: TrialSpec) -> TrialResult:
    """What a Ray task runs for one trial (see the module docstring)."""
    started, node = time.time(), where()
    if spec.board is not None:
        spec.board.started.remote(spec.index, node)
    result = TrialResult(spec.index, spec.name, "failed", node)
    work = Path(tempfile.mkdtemp(prefix=f"mnist-gan-{spec.name}-"))
    log = work.parent / f"{work.name}.log"
    env = {
        **os.environ,
        # dvc.yaml's commands say `python`: the interpreter running this trial, with the project installed
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": str(spec.threads),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "mnist-gan sweep",
        "GIT_COMMITTER_NAME": "mnist-gan sweep",
        "GIT_AUTHOR_EMAIL": f"sweep@{socket.gethostname()}",
        "GIT_COMMITTER_EMAIL": f"sweep@{socket.gethostname()}",
    }
    dvc = [sys.executable, "-m", "dvc"]
    try:
        ref = remote_experiment_ref(spec.git_url, spec.name)
        steps = [
            ("clone", ["git", "init", "-q"]),
            ("clone", ["git", "fetch", "-q", spec.git_url, spec.sweep_ref]),
            ("clone", ["git", "checkout", "-q", "FETCH_HEAD"]),
        ]
        if ref is None:
            sets = [arg for item in spec.overrides for arg in ("-S", item)]
            steps += [
                # no update-check daemon: a detached process that would outlive the trial and its folder
                ("pull", [*dvc, "config", "--local", "core.check_update", "false"]),
                ("pull", [*dvc, "remote", "default", "--local", spec.dvc_remote]),
                ("pull", [*dvc, "pull", "-q", "--allow-missing", *UPSTREAM]),
                ("run", [*dvc, "exp", "run", "--pull", "-n", spec.name, *sets, *spec.stages]),
                ("push", [*dvc, "exp", "push", "-r", spec.dvc_remote, spec.git_url, spec.name]),
            ]
        else:  # an earlier attempt landed it: read its metrics, train nothing
            steps += [("clone", ["git", "fetch", "-q", spec.git_url, f"{ref}:{ref}"])]
        for what, cmd in steps:
            began = time.time()
            code = run_guarded(cmd, work, env, log)
            result.steps[what] = result.steps.get(what, 0.0) + time.time() - began
            if code != 0:
                result.log_tail = log_tail(log.read_text())
                return result
        metrics = show(work, experiment_ref(work, spec.name), "results/evaluate/metrics.json")
        result.metrics = json.loads(metrics).get("generated", {}) if metrics is not None else {}
        result.status, result.reused = "done", ref is not None
        return result
    finally:
        result.seconds = time.time() - started
        shutil.rmtree(work, ignore_errors=True)
        Path(log).unlink(missing_ok=True)


def log_tail(text: str) -> str:
    """The end of a failed trial's log, led by its stages' one-line errors when they scrolled out of it."""
    lines = text.splitlines()
    errors = [line for line in lines[:-LOG_TAIL] if line.startswith("error: ")]
    return "\n".join([*errors[-3:], *lines[-LOG_TAIL:]])


# -- the guard: `python -m mnist_gan.sweep.trial <folder> -- cmd ...` ----------------------------------------------
PR_SET_PDEATHSIG = 1


def guard(folder: Path, node: int, cmd: list[str]) -> int:
    """Run `cmd` in a process group of its own, and stop it (kill the whole group, remove `folder`) as soon as
    our parent (the Ray worker) or `node` (its raylet) is gone: the kernel signals us when the parent dies
    (PR_SET_PDEATHSIG), and a watcher thread polls both every half second."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = os.getppid()
    child = subprocess.Popen(cmd, start_new_session=True)

    def stop(*_):
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(folder, ignore_errors=True)
        os._exit(143)

    def alive(pid: int) -> bool:
        # a zombie counts as dead: a killed raylet whose parent died too waits for init to reap it
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        except (OSError, IndexError):
            return True
        return state not in ("Z", "X")

    def watch():
        while True:
            if os.getppid() != parent or not alive(node):
                stop()
            time.sleep(0.5)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=watch, daemon=True).start()
    return child.wait()


if __name__ == "__main__":
    folder, node, _, *command = sys.argv[1:]
    sys.exit(guard(Path(folder), int(node), command))
