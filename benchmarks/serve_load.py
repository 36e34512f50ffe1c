"""Load test of the digit server: locust, headless, against `mnist-gan serve` on 127.0.0.1.

    python -m benchmarks.serve_load [--model models/generator.onnx] [--users 50] [--seconds 60]

Starts the server (one uvicorn process), runs benchmarks/locustfile.py (16-image grids of random digits, think
time 0.5-1.5 s per user), prints requests, failures, requests/s and the latency percentiles, and stops the
server. Run it on an otherwise idle machine: locust and the server share its cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, workers: int) -> tuple[subprocess.Popen, str]:
    """`mnist-gan serve` on a free local port, once its /healthz answers ok (or exit with a one-line error)."""
    url = f"http://127.0.0.1:{(port := free_port())}"
    serve = ["serve", "--model", str(model), "--port", str(port), "--workers", str(workers)]
    server = subprocess.Popen([str(Path(sys.executable).parent / "mnist-gan"), *serve])
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if json.load(r)["status"] == "ok":
                    return server, url
        except OSError:
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                sys.exit("error: the server did not start")
            time.sleep(0.2)


def locust_stats(url: str, users: int, seconds: int) -> dict[str, dict]:
    """Locust's summary rows by endpoint name, after `users` users (all spawned at once) for `seconds`."""
    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "load"
        load = ["-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless", "-u", str(users), "-r", str(users)]
        load += ["-t", f"{seconds}s", "--host", url, "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"]
        subprocess.run([str(Path(sys.executable).parent / "locust"), *load], check=True)
        with open(f"{prefix}_stats.csv") as f:
            return {r["Name"]: r for r in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "generator.onnx")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    server, url = start_server(args.model, args.workers)
    try:
        rows = locust_stats(url, args.users, args.seconds)
    finally:
        server.terminate()
        server.wait(10)
    grid = rows["/generate.png"]
    print(f"\n{args.users} users, {args.seconds} s, {args.workers} uvicorn worker(s), model {args.model.name}:")
    print(
        f"/generate.png (16 images): {grid['Request Count']} requests, {grid['Failure Count']} failed, "
        f"{float(grid['Requests/s']):.1f} requests/s, latency median {grid['50%']} ms, p95 {grid['95%']} ms, "
        f"p99 {grid['99%']} ms, max {float(grid['Max Response Time']):.0f} ms"
    )


if __name__ == "__main__":
    main()
