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
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
STORE = str(80 * 2**20)  # object store per node: trials return small results only


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def node_ports() -> list[str]:
    """Flags giving a node ports of its own (and a worker port range), so nodes on one machine never collide."""
    names = (
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    )
    low = free_ports(1)[0]
    ports = free_ports(len(names))
    flags = [f"{name}={port}" for name, port in zip(names, ports, strict=True)]
    base = 20000 + (low % 200) * 100  # a worker port range of 50 that other nodes' ranges do not overlap
    return [*flags, f"--min-worker-port={base}", f"--max-worker-port={base + 49}"]


class Cluster:
    """`with Cluster(workers=2) as c:` ... `c.address`, `c.kill_worker(i)`; every process stopped at exit."""

    def __init__(self, workers: int = 2, cpus: int = 1):
        self.temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths have a length limit
        self.port = free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.head = self._start(
            [
                "--head",
                f"--port={self.port}",
                "--num-cpus=0",
                "--include-dashboard=false",
                f"--temp-dir={self.temp}",
                f"--ray-client-server-port={free_ports(1)[0]}",
            ]
        )
        self._wait_for(lambda: self._nodes() >= 1, "the head")
        self.workers = [self._start([f"--address={self.address}", f"--num-cpus={cpus}"]) for _ in range(workers)]
        self._wait_for(lambda: self._nodes() >= 1 + workers, f"{workers} worker node(s)")

    def _start(self, flags: list[str]) -> subprocess.Popen:
        cmd = [
            RAY,
            "start",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--object-store-memory={STORE}",
            "--disable-usage-stats",
            *node_ports(),
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
            time.sleep(1)
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
        _, alive = psutil.wait_procs(procs, timeout=10)
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
