"""A real Ray cluster on this machine for the sweep tests and benchmark: a head (no CPUs, so trials run only on
workers) and worker nodes of one CPU each, every one its own `ray start --block` process (its own raylet), with ports
of their own, a small object store, usage stats off, token authentication on, stopped by pid.

The whole cluster lives in a network namespace of its own that holds only the loopback interface (`unshare --net`;
root): Ray 2.60 replaces a loopback --node-ip-address by the machine's address and binds there, so outside such a
namespace every node would listen on the machine's network. Whatever must reach the cluster (the sweep driver, a
probe) runs inside it too: `Cluster.enter + command`, with `Cluster.env` (which carries the cluster's token).
"""

from __future__ import annotations

import json
import os
import secrets
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
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
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


def namespaces() -> str | None:
    """Why a network namespace cannot be made here (not root, no `unshare`), or None when it can."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare and nsenter (util-linux) are not installed"
    done = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"unshare --net refused: {done.stderr.strip() or 'not root?'}"


def listening(procs: list[psutil.Process]) -> set[tuple[str, str]]:
    """(process name, address) of every listening TCP socket of `procs`, which must share this process's network
    namespace (psutil reads the sockets of the namespace it runs in: `Cluster.listening` runs it inside)."""
    found = set()
    for p in procs:
        try:
            found |= {(p.name(), c.laddr.ip) for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    return found


class Cluster:
    """`with Cluster(workers=2) as c:` ... `c.address`, `c.kill_worker(i)`; every process stopped at exit."""

    def __init__(self, workers: int = 2, cpus: int = 1):
        self.namespace = subprocess.Popen(
            ["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.enter = ["nsenter", f"--net=/proc/{self.namespace.pid}/ns/net", "--"]
        self.env = {**ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        deadline = time.time() + 10
        while (
            "UP"
            not in subprocess.run(
                [*self.enter, "ip", "-br", "link", "show", "lo"], capture_output=True, text=True
            ).stdout
        ):
            if time.time() > deadline:
                self.namespace.kill()
                raise RuntimeError("the cluster's network namespace did not come up")
            time.sleep(0.05)
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
        return subprocess.Popen([*self.enter, *cmd], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _nodes(self) -> int:
        code = (
            f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False); "
            "print(sum(n['Alive'] for n in ray.nodes()))"
        )
        done = subprocess.run(
            [*self.enter, sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120
        )
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
        self.namespace.kill()
        self.namespace.wait()

    def all_processes(self) -> list[psutil.Process]:
        return [p for node in [self.head, *self.workers] for p in self.processes(node)]

    def listening(self) -> set[tuple[str, str]]:
        """(process name, address) of every listening socket of every process of the cluster, read inside it."""
        pids = [p.pid for p in self.all_processes()]
        code = (
            "import json, sys, psutil; from harness.ray_cluster import listening; "
            "print(json.dumps(sorted(listening([psutil.Process(int(a)) for a in sys.argv[1:]]))))"
        )
        root = Path(__file__).resolve().parents[1]
        env = {**self.env, "PYTHONPATH": f"{root}:{root / 'src'}"}
        done = subprocess.run(
            [*self.enter, sys.executable, "-c", code, *map(str, pids)], env=env, capture_output=True, text=True
        )
        return {tuple(pair) for pair in json.loads(done.stdout)}

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
