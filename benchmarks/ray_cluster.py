"""A real Ray cluster on this machine for the sweep tests and benchmark: a head (no CPUs, so trials run only on
workers) and worker nodes of one CPU each, every one its own `ray start --block` process (its own raylet), all on
127.0.0.1 with ports of their own, a small object store, usage stats off, stopped by pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
# token auth off: a local ray.init() would otherwise write ~/.ray/auth_token, which later heads pick up and later
# clients do not (Ray 2.60), so every cluster of a test session would reject its drivers
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
STORE = str(80 * 2**20)  # object store per node: trials return small results only


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def cluster_ports(nodes: int) -> tuple[int, int, list[list[str]]]:
    """(GCS port, client server port, per-node flags): every port distinct (all held open while chosen), and each
    node a worker port range of its own, so the nodes of one machine never collide."""
    ports = free_ports(2 + len(PORT_FLAGS) * nodes)
    gcs, client, rest = ports[0], ports[1], ports[2:]
    base = 20000 + (gcs % 150) * 100  # worker port ranges of 50, 100 apart: nodes * 100 below 40000
    flags = []
    for i in range(nodes):
        mine = rest[i * len(PORT_FLAGS) : (i + 1) * len(PORT_FLAGS)]
        flags.append(
            [f"{flag}={port}" for flag, port in zip(PORT_FLAGS, mine, strict=True)]
            + [f"--min-worker-port={base + 100 * i}", f"--max-worker-port={base + 100 * i + 49}"]
        )
    return gcs, client, flags


def running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Cluster:
    """`with Cluster(workers=2) as c:` ... `c.address`, `c.kill_worker(i)`; every process stopped at exit."""

    def __init__(self, workers: int = 2, cpus: int = 1):
        self.temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths have a length limit
        self.port, client, flags = cluster_ports(1 + workers)
        self.address = f"127.0.0.1:{self.port}"
        self.head = self._start(
            [
                "--head",
                f"--port={self.port}",
                "--num-cpus=0",
                "--include-dashboard=false",
                f"--temp-dir={self.temp}",
                f"--ray-client-server-port={client}",
                *flags[0],
            ]
        )
        self._wait_for(lambda: self._nodes() >= 1, "the head")
        self.workers = []
        for i in range(workers):  # one at a time: raylets starting together on 2 busy cores time out registering
            self.workers.append(self._start([f"--address={self.address}", f"--num-cpus={cpus}", *flags[1 + i]]))
            self._wait_for(lambda n=i: self._nodes() >= 2 + n, f"worker node {i + 1}")

    def _start(self, flags: list[str]) -> subprocess.Popen:
        cmd = [
            RAY,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--object-store-memory={STORE}",
            "--disable-usage-stats",
            *flags,
        ]
        return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _nodes(self) -> int:
        code = (
            f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
        return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0

    def _wait_for(self, ready, what: str, timeout: float = 180) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if ready():
                return
            time.sleep(2)
        self.stop()
        raise RuntimeError(f"Ray: {what} did not come up within {timeout:.0f} s")

    def processes(self, node: subprocess.Popen) -> list[psutil.Process]:
        """A node's `ray start` process and everything it started (raylet, agents, workers and their children)."""
        try:
            root = psutil.Process(node.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def raylet(self, node: subprocess.Popen) -> psutil.Process | None:
        return next((p for p in self.processes(node) if p.name() == "raylet"), None)

    def kill_worker(self, index: int) -> None:
        """SIGKILL a worker node, as a machine dying would take it: its `ray start` process and its raylet."""
        node = self.workers[index]
        raylet = self.raylet(node)
        for p in [psutil.Process(node.pid), *([raylet] if raylet else [])]:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass

    def stop(self) -> None:
        """SIGTERM then SIGKILL every process of every node we started (by pid: never `ray stop`)."""
        nodes = [*getattr(self, "workers", []), self.head]
        procs = [p for node in nodes for p in self.processes(node)]
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        # `ray start --block`, the GCS and the autoscaler monitor outlast a SIGTERM by 10 s and more here: 2 s of
        # grace, then SIGKILL (the cluster's files are in self.temp). A zombie (exited, not reaped) is gone.
        deadline = time.time() + 2
        while (alive := [p for p in procs if running(p)]) and time.time() < deadline:
            for node in nodes:
                node.poll()  # reap the `ray start` processes, our own children
            time.sleep(0.1)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(self.temp, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
