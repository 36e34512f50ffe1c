"""One trial, as it runs on a Ray worker: clone the swept commit into a worker-local folder, `dvc exp run --pull`
with the trial's overrides, `dvc exp push` the experiment (git refs to the git remote, outputs to the DVC remote),
return its metrics and node, delete the folder.

A retried trial (Ray reruns it when its node or worker dies) first asks the git remote whether its experiment is
already there, and if so returns that instead of training again: an experiment lands once. Every command runs under
the guard (guard.py), so a dead worker or node leaves nothing of the trial running.

An interrupted sweep cancels its trials with `ray.cancel` (not forced): Ray raises KeyboardInterrupt in the task,
the trial stops its command's whole process tree and returns "cancelled", and the driver has that answer only once
nothing of the trial runs. A trial that is pushing its experiment finishes the push and lands instead: nothing of a
cancelled trial reaches the remotes.
"""

from __future__ import annotations

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

from mnist_gan.evaluation.registry import METRICS_FILE
from mnist_gan.sweep.guard import guarded, log_of
from mnist_gan.vcs import experiment_ref, remote_experiment_ref, show

LOG_TAIL = 25  # lines of a failed trial's log shown to the user
UPSTREAM = ("fetch", "normalize", "classifier")  # stages no GAN setting reruns: pulled, never recomputed
POLL = 0.2  # seconds between looks at a running command: Ray's cancel interrupts the task between two


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
    status: str  # "done" | "failed" | "cancelled"
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


def wait(proc: subprocess.Popen) -> int:
    """`proc`'s exit code, waited for in short sleeps: Ray cancels a task by interrupting its main thread
    (`_thread.interrupt_main`), which Python sees between two bytecodes, never inside a blocking waitpid."""
    while True:
        try:
            return proc.wait(timeout=POLL)
        except subprocess.TimeoutExpired:
            pass


def run_guarded(cmd: list[str], cwd: Path, env: dict, log: Path, stoppable: bool = True) -> int:
    """`cmd` under the guard (guard.py), output appended to `log`; its exit code. Interrupted (the trial cancelled):
    stops the command's whole process tree and re-raises; or, if not `stoppable`, lets the command finish."""
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        # the raylet, our Ray worker's parent: the node itself. When it dies the worker may run on for a while,
        # so the guard watches it too
        raylet = os.getppid()
        relay = subprocess.Popen(guarded(cmd, cwd, raylet), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = wait(relay)
        except KeyboardInterrupt:
            if stoppable:
                relay.terminate()  # the relay passes it to the keeper, which stops the tree and then exits
                relay.wait()
                raise
            code = wait(relay)  # Ray interrupts a task once
    if os.getppid() != raylet:
        # our node died under this trial (the guard stopped it): die with it rather than report a failure, so
        # that Ray sees a lost worker and reruns the trial on another node
        os._exit(1)
    return code


def take_cancels() -> None:
    """Let `ray.cancel` reach this task: Ray interrupts it with `_thread.interrupt_main()`, which does nothing where
    SIGINT is ignored, as in the workers of a Ray started by a background job of a script or CI (inherited)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_trial(spec: TrialSpec) -> TrialResult:
    """What a Ray task runs for one trial (see the module docstring)."""
    take_cancels()
    started, node = time.time(), where()
    if spec.board is not None:
        spec.board.started.remote(spec.index, node)
    result = TrialResult(spec.index, spec.name, "failed", node)
    work = Path(tempfile.mkdtemp(prefix=f"mnist-gan-{spec.name}-"))
    log = log_of(work)
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
    ref = None
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
            code = run_guarded(cmd, work, env, log, stoppable=what != "push")
            result.steps[what] = result.steps.get(what, 0.0) + time.time() - began
            if code != 0:
                result.log_tail = log_tail(log.read_text())
                return result
        return landed(result, work, ref is not None)
    except KeyboardInterrupt:  # ray.cancel: the sweep was interrupted; no command of ours runs any more
        if remote_experiment_ref(spec.git_url, spec.name) is None:
            result.status = "cancelled"
            return result
        return landed(result, work, ref is not None)  # its push had finished: it landed
    finally:
        result.seconds = time.time() - started
        for _ in range(2):  # once more if Ray's one interrupt came during the first try
            try:
                shutil.rmtree(work, ignore_errors=True)
                log.unlink(missing_ok=True)
                break
            except KeyboardInterrupt:
                pass


def landed(result: TrialResult, work: Path, reused: bool) -> TrialResult:
    """`result` as done, with the metrics of the experiment in `work`."""
    metrics = show(work, experiment_ref(work, result.name), METRICS_FILE)
    result.metrics = json.loads(metrics).get("generated", {}) if metrics is not None else {}
    result.status, result.reused = "done", reused
    return result


def log_tail(text: str) -> str:
    """The end of a failed trial's log, led by its stages' one-line errors when they scrolled out of it."""
    lines = text.splitlines()
    errors = [line for line in lines[:-LOG_TAIL] if line.startswith("error: ")]
    return "\n".join([*errors[-3:], *lines[-LOG_TAIL:]])
