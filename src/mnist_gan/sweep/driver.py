"""The driver of `mnist-gan sweep`: check everything, submit one Ray task per trial, show progress, pull results.

Before any trial starts it refuses (one line, exit code 2) a bad override, a dirty work tree, an unreachable
cluster, git remote or DVC remote, and a folder DVC remote with a cluster of several nodes (unless the user says
it is shared storage). Then it publishes the swept commit (refs/sweeps/<sweep> in the git remote), pushes the
upstream stages' cached outputs to the DVC remote, runs the trials (`trial.run_trial`, retried by Ray when a
node or worker dies), shows a live table, and `dvc exp pull`s every finished trial into the user's clone.

Ctrl-C (SIGINT) or SIGTERM while trials run: every trial is cancelled (`ray.cancel`: a KeyboardInterrupt in the task,
which stops its process tree on its node and returns "cancelled"; a queued one never starts). A trial still running
after GRACE seconds, or after a second signal, is force-cancelled: Ray ends its worker, the trial's guard its
processes. The trials that had landed are pulled; exit 128 + the signal.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mnist_gan.evaluation.registry import METRICS
from mnist_gan.storage import write_text
from mnist_gan.sweep.grid import SweepError, Trial, check, expand
from mnist_gan.sweep.remotes import (
    check_git_remote,
    dvc_remote,
    git_remote_url,
    is_local,
    publish,
    push_upstream,
    require_clean_tree,
)
from mnist_gan.sweep.trial import TrialResult, TrialSpec, run_trial
from mnist_gan.vcs import dvc

SHOWN = ("fid", "precision", "recall", "label_accuracy")  # the final table's metric columns
GRACE = 30.0  # seconds the interrupted trials get to stop their processes before they are force-cancelled


@dataclass(frozen=True)
class SweepOptions:
    settings: list[str]  # -S overrides, as `dvc exp run --queue -S` takes them
    repo: Path = Path(".")
    name: str | None = None  # the experiments are <name>-1, <name>-2, ...
    address: str | None = None  # HOST:PORT of a running Ray cluster; None: a Ray instance on this machine
    cpus_per_trial: float = 1.0  # also each trial's torch threads
    gpus_per_trial: float = 0.0
    git_remote: str | None = None  # a remote name or URL every node reaches; None: the repo itself
    dvc_remote: str | None = None  # a DVC remote every node reaches; None: the project's default
    shared_storage: bool = False  # the DVC remote is a folder every node sees (NFS, ...)
    dry_run: bool = False
    retries: int = 3  # Ray reruns a trial whose node or worker died, this many times
    report: Path | None = None  # also write every trial's result here, as JSON
    stages: tuple[str, ...] = ()  # reproduce only these stages (and what they need) in each trial; () = all


class Board:
    """A Ray actor the trials report their start to (node and attempt), which the driver polls."""

    def __init__(self):
        self.runs: dict[int, list[str]] = {}

    def started(self, index: int, node: str) -> None:
        self.runs.setdefault(index, []).append(node)

    def snapshot(self) -> dict[int, list[str]]:
        return self.runs


class Interrupted(KeyboardInterrupt):
    """SIGINT (Ctrl-C) or SIGTERM reached the driver."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def interruptible():
    """SIGINT and SIGTERM raise Interrupted while the block runs; yields the list of the signals received. Ray turns
    an exception raised by a handler inside its calls into a plain KeyboardInterrupt: the list tells which signal it
    was. Installed whatever the driver inherited: a background job of a non-interactive shell (a script, CI) starts
    with SIGINT ignored, and Ray's own SIGTERM handler would exit without stopping a trial."""
    received: list[int] = []

    def interrupt(signum, _frame):
        received.append(signum)
        raise Interrupted(signum)

    saved = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    except KeyboardInterrupt as e:
        raise Interrupted(received[0] if received else signal.SIGINT) from e
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def native_stderr_quiet():
    """File descriptor 2 into a scratch file while the block runs (Ray's C++ core writes there directly, past
    Python's sys.stderr); what it wrote is dropped: a failure is reported in one line by the caller."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def local_only() -> None:
    """The embedded default's Ray, before ray.init starts it: on the loopback only, with a token of its own.

    Ray 2.60 replaces a loopback node address by the machine's and binds there (even a local `ray.init()` listens on
    every address); `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` is its single-machine mode, which binds 127.0.0.1 (one node,
    as here). A local `ray.init()` also turns token authentication on and writes ~/.ray/auth_token, which every later
    `ray start --head` of the user would then require: a random token in this process's environment (inherited by
    the Ray processes it starts) keeps authentication on and writes nothing. A user's own RAY_AUTH_* settings win."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if not any(k in os.environ for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)  # ray.init then turns token mode on itself


def token_refused(error: BaseException, authentication_error: type) -> bool:
    """Whether a failed ray.init was the cluster refusing the token: Ray raises it as an AuthenticationError, or as a
    ConnectionError / RuntimeError ("Failed to connect to GCS") with the AuthenticationError somewhere in its chain."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, authentication_error) or "InvalidAuthToken" in str(error):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def connect(address: str | None, cpus: float):
    """ray.init on the cluster at `address` (checked first: one line if nothing answers), or a local instance."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is not None:
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
        except (OSError, ValueError) as e:
            raise SweepError(f"cannot reach the Ray cluster at {address}: {e}") from None
    if address is None:
        local_only()
    try:
        import ray
    except ImportError:
        raise SweepError("ray is not installed in this environment: `make venv` installs it (pyproject.toml)") from None

    if address is not None:
        try:
            with native_stderr_quiet():  # Ray's core logs every retry of a refused token on fd 2
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
        except (ray.exceptions.AuthenticationError, ConnectionError, RuntimeError) as e:
            if not token_refused(e, ray.exceptions.AuthenticationError):
                raise
            raise SweepError(
                f"the Ray cluster at {address} refused this driver's token (none, or not the cluster's): give it the "
                f"token every node of the cluster runs with, RAY_AUTH_TOKEN=<token> or RAY_AUTH_TOKEN_PATH=<file> "
                f"(docs/sweeps.md)"
            ) from None
    else:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # what the variable set above means, if ray was imported before
        ray.init(
            num_cpus=max(os.cpu_count() or 1, int(cpus)),
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            object_store_memory=200 * 2**20,
        )
    return ray


def trial_table(
    trials: list[Trial], results: dict[int, TrialResult], runs: dict[int, list[str]], first_seen: dict[int, float]
) -> Table:
    table = Table(title="sweep", title_justify="left")
    for column in ("trial", "overrides", "state", "node", "elapsed", "FID"):
        table.add_column(column, justify="right" if column in ("elapsed", "FID") else "left")
    now = time.time()
    for t in trials:
        r, nodes = results.get(t.index), runs.get(t.index, [])
        state = r.status if r else ("running" if nodes else "queued")
        if not r and len(nodes) > 1:
            state += f" (attempt {len(nodes)})"
        elapsed = r.seconds if r else (now - first_seen[t.index] if t.index in first_seen else None)
        fid = r.metrics.get("fid") if r else None
        table.add_row(
            t.name,
            t.label,
            state,
            (r.node if r else nodes[-1] if nodes else ""),
            "" if elapsed is None else f"{elapsed:.0f} s",
            "" if fid is None else f"{fid:.2f}",
        )
    return table


def final_table(trials: list[Trial], results: dict[int, TrialResult]) -> Table:
    table = Table(title="sweep results, best FID first", title_justify="left")
    for column in ("experiment", "overrides", "state", "node", "time", *(METRICS[k].short for k in SHOWN)):
        table.add_column(column)
    by_index = {t.index: t for t in trials}
    order = sorted(results.values(), key=lambda r: (r.status != "done", r.metrics.get("fid", float("inf"))))
    for r in order:
        values = [METRICS[k].format(r.metrics.get(k)) for k in SHOWN]
        state = r.status + (" (already pushed)" if r.reused else "")
        table.add_row(r.name, by_index[r.index].label, state, r.node, f"{r.seconds:.0f} s", *values)
    return table


def run_sweep(opts: SweepOptions, console: Console | None = None) -> int:
    """The whole sweep; returns the exit code (0 all landed, 1 a trial failed, 130 / 143 interrupted by SIGINT /
    SIGTERM). Raises SweepError (exit code 2) for what is refused before any trial starts, Interrupted for a signal
    before the trials are submitted."""
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    repo = Path(opts.repo).resolve()
    name = opts.name or datetime.now().strftime("sweep-%Y%m%d-%H%M%S")
    trials = expand(opts.settings, name)
    check(trials, repo / "params.yaml")
    if opts.dry_run:
        for t in trials:
            sets = " ".join(f"-S {o}" for o in t.overrides)
            console.print(f"{t.name}: dvc exp run -n {t.name} {sets}" + "".join(f" {s}" for s in opts.stages))
        return 0
    require_clean_tree(repo)
    git_url = git_remote_url(repo, opts.git_remote)
    check_git_remote(git_url)
    remote, remote_url = dvc_remote(repo, opts.dvc_remote)
    ray = connect(opts.address, opts.cpus_per_trial)
    try:
        with interruptible() as received:
            nodes = [n for n in ray.nodes() if n["Alive"]]
            if len(nodes) > 1 and is_local(remote_url) and not opts.shared_storage:
                raise SweepError(
                    f"the DVC remote {remote!r} is a folder of this machine ({remote_url}) and the cluster "
                    f"has {len(nodes)} nodes: name a remote every node reaches (--dvc-remote), or pass "
                    f"--shared-storage if that folder is shared by all of them"
                )
            for line in push_upstream(repo, remote):
                console.print(f"warning: {line}")
            publish(repo, git_url, name)
            return _run(ray, opts, trials, name, git_url, remote, repo, console, received)
    finally:
        ray.shutdown()


def _snapshot(ray, board, last: dict[int, list[str]]) -> dict[int, list[str]]:
    """Which node runs which trial, from the progress board; the last view if the board cannot answer (its node
    died: the trials go on, only the live table's node column stops updating)."""
    try:
        return ray.get(board.snapshot.remote(), timeout=10)
    except (ray.exceptions.RayError, TimeoutError):
        return last


def _run(
    ray,
    opts: SweepOptions,
    trials: list[Trial],
    name: str,
    git_url: str,
    remote: str,
    repo: Path,
    console: Console,
    received: list[int],
) -> int:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    board = (
        ray.remote(num_cpus=0)(Board)
        .options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True))
        .remote()
    )
    task = ray.remote(run_trial).options(
        num_cpus=opts.cpus_per_trial, num_gpus=opts.gpus_per_trial, max_retries=opts.retries, retry_exceptions=False
    )
    threads = max(1, int(opts.cpus_per_trial))
    ref = f"refs/sweeps/{name}"
    specs = [TrialSpec(t.index, t.name, t.overrides, git_url, ref, remote, threads, board, opts.stages) for t in trials]
    pending = {task.remote(spec): t for spec, t in zip(specs, trials, strict=True)}
    results: dict[int, TrialResult] = {}
    first_seen: dict[int, float] = {}
    runs: dict[int, list[str]] = {}
    interrupted: int | None = None  # the signal
    stopping = 0.0  # seconds the trials took to stop after it
    with Live(console=console, refresh_per_second=2, transient=False) as live:

        def show() -> None:
            nonlocal runs
            runs = _snapshot(ray, board, runs)
            for index in runs:
                first_seen.setdefault(index, time.time())
            live.update(trial_table(trials, results, runs, first_seen))

        try:
            _collect(ray, pending, results, show)
        except KeyboardInterrupt:  # Interrupted, or what Ray made of it
            interrupted, began = (received[0] if received else signal.SIGINT), time.time()
            _stop(ray, pending, results, show)
            stopping = time.time() - began
    landed = [r.name for r in results.values() if r.status == "done"]
    if landed:
        pulled = dvc(repo, "exp", "pull", git_url, *landed)
        if pulled.returncode != 0:
            console.print(f"warning: dvc exp pull failed: {(pulled.stderr or pulled.stdout).strip().splitlines()[-1]}")
    console.print(final_table(trials, results))
    if opts.report is not None:
        rows = [asdict(r) for r in sorted(results.values(), key=lambda r: r.index)]
        write_text(opts.report, json.dumps(rows, indent=2) + "\n")
    for r in sorted(results.values(), key=lambda r: r.index):
        if r.status == "failed":
            console.print(
                f"\n[bold red]{r.name} failed[/] on {r.node or 'an unknown node'}:\n{r.log_tail}", highlight=False
            )
    if interrupted is not None:
        cancelled = [r.name for r in sorted(results.values(), key=lambda r: r.index) if r.status == "cancelled"]
        console.print(
            f"interrupted ({signal.Signals(interrupted).name}): cancelled {', '.join(cancelled) or 'no trial'}, "
            f"their processes stopped in {stopping:.1f} s; {len(landed)} trial(s) that had landed pulled"
        )
        return 128 + interrupted
    console.print(
        f"{len(landed)} of {len(trials)} experiment(s) landed; `dvc exp show` and `mnist-gan compare` show them"
    )
    return 0 if len(landed) == len(trials) else 1


def _collect(ray, pending: dict, results: dict[int, TrialResult], show, until: float = float("inf")) -> None:
    """Move each finished trial's result from `pending` to `results` until none is pending (or `until` passes);
    `show()` after each look."""
    while pending and time.time() < until:
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
        for ref in ready:
            trial = pending.pop(ref)
            results[trial.index] = _result(ray, ref, trial)
        show()


def _stop(ray, pending: dict, results: dict[int, TrialResult], show) -> None:
    """After a signal: cancel every trial (a running one stops its processes and answers "cancelled", or "done" if
    it was pushing; a queued one never starts) and collect the answers; force-cancel the trials still running after
    GRACE seconds or a second signal (Ray ends their workers, their guards the processes)."""
    for ref in pending:
        ray.cancel(ref)
    try:
        _collect(ray, pending, results, show, until=time.time() + GRACE)
    except KeyboardInterrupt:
        pass
    for ref, trial in pending.items():
        ray.cancel(ref, force=True)
        why = f"did not stop within {GRACE:.0f} s of the signal, or a second signal came: its Ray worker was ended"
        results[trial.index] = TrialResult(trial.index, trial.name, "cancelled", log_tail=why)
    if pending:
        ray.wait(list(pending), num_returns=len(pending), timeout=10)


def _result(ray, ref, trial: Trial) -> TrialResult:
    """The trial's result; a cancelled one if Ray cancelled it before it ran; or a failed one saying why Ray could
    not produce it (retries spent)."""
    try:
        return ray.get(ref)
    except ray.exceptions.TaskCancelledError:
        return TrialResult(trial.index, trial.name, "cancelled")
    except Exception as e:  # ray.exceptions.*: the trial's own code raised, or its worker died every time
        return TrialResult(trial.index, trial.name, "failed", log_tail=str(e).strip().splitlines()[-1][:500])
