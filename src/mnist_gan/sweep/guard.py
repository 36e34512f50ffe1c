"""Run a trial's command so that it and every process it starts stop together, whichever process dies first.

    Ray worker -> relay -> keeper -> dvc exp run -> sh -> python -m stages.train

- The **relay** is the worker's direct child and holds nothing: Ray kills a worker's direct children with SIGKILL when
  the worker exits (`RAY_kill_child_processes_on_worker_exit`, on by default: a force-cancel, a lost raylet), and the
  kernel kills the relay when the worker dies any other way (`PR_SET_PDEATHSIG`). It passes SIGTERM and SIGINT on to
  the keeper and exits with the keeper's code.
- The **keeper** leaves the worker's process group (`setsid`): Ray also SIGKILLs that whole group when the worker
  exits, which would leave nobody to clean up. It is a child subreaper (`PR_SET_CHILD_SUBREAPER`): whatever the
  command starts stays its descendant, even orphaned, so it can always find them all. It kills them (SIGKILL, until
  none is left), removes the trial's folder and log and exits 143 when it is told to (SIGTERM, SIGINT), when the relay
  is gone (`PR_SET_PDEATHSIG`, and a poll) or when the node's raylet is (a poll: a worker can outlive its raylet).

A keeper that were the worker's child, or in its process group, would be SIGKILLed with it and leave the trial's
folder behind, and a command in a session of its own would run on: what Ray 2.60 does, seen on this project's test
cluster.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL = 0.5  # seconds between the keeper's looks at its relay and the raylet
STOPPED = 143  # the keeper's exit code when it stopped the command (128 + SIGTERM)


def log_of(folder: Path) -> Path:
    """The log of the trial working in `folder`: beside it, so that `git init` there sees an empty folder."""
    return folder.with_name(f"{folder.name}.log")


def guarded(cmd: list[str], folder: Path, raylet: int) -> list[str]:
    """The command line that runs `cmd` under the guard, for a Ray worker whose raylet (its parent) is `raylet`."""
    return [sys.executable, "-m", "mnist_gan.sweep.guard", str(folder), str(raylet), "--", *cmd]


def _prctl(option: int, value: int) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(option, value) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie counts as dead (a killed raylet whose parent died too waits for init)."""
    try:
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return False


def relay(folder: Path, raylet: int, cmd: list[str]) -> int:
    """The worker's child: fork the keeper, pass it the signals that stop a trial, exit with its code."""
    worker = os.getppid()
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != worker:  # the worker died before the line above
        return STOPPED
    keeper = os.fork()
    if keeper == 0:
        os._exit(keep(folder, raylet, cmd))

    def forward(signum, _frame):
        try:
            os.kill(keeper, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _, status = os.waitpid(keeper, 0)  # retried after each forwarded signal (PEP 475)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def stop_descendants(timeout: float = 10.0) -> None:
    """SIGKILL every descendant of this process (a subreaper: orphans are ours too) and reap them, until none is
    left; a process that forks while the others die is caught on the next round."""
    me, deadline = psutil.Process(), time.time() + timeout
    while (left := [p for p in me.children(recursive=True) if alive(p.pid)]) and time.time() < deadline:
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=1)
        _reap()
    _reap()


def _reap() -> None:
    """Collect every exited child (orphans reparented to a subreaper become its children)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def keep(folder: Path, raylet: int, cmd: list[str]) -> int:
    """Run `cmd` (see the module docstring); its exit code, or STOPPED when the keeper stopped it."""
    relay_pid = os.getppid()
    os.setsid()
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    lock = threading.Lock()

    def stop(*_):
        if not lock.acquire(blocking=False):  # the signal handler and the watcher can both get here
            return
        stop_descendants()
        shutil.rmtree(folder, ignore_errors=True)
        log_of(folder).unlink(missing_ok=True)
        os._exit(STOPPED)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if os.getppid() != relay_pid:  # the relay died before PR_SET_PDEATHSIG was set
        stop()
    child = subprocess.Popen(cmd)

    def watch():
        while True:
            if os.getppid() != relay_pid or not alive(raylet):
                stop()
            time.sleep(POLL)

    threading.Thread(target=watch, daemon=True).start()
    code = child.wait()
    with lock:  # not while a stop is under way; and nothing the command started outlives it
        stop_descendants()
        return code


if __name__ == "__main__":
    folder, raylet, _, *command = sys.argv[1:]
    sys.exit(relay(Path(folder), int(raylet), command))
