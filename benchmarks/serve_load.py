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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "generator.onnx")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            str(bin_dir / "mnist-gan"),
            "serve",
            "--model",
            str(args.model),
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                    if json.load(r)["status"] == "ok":
                        break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    sys.exit("error: the server did not start")
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as tmp:
            prefix = Path(tmp) / "load"
            subprocess.run(
                [
                    str(bin_dir / "locust"),
                    "-f",
                    str(ROOT / "benchmarks" / "locustfile.py"),
                    "--headless",
                    "-u",
                    str(args.users),
                    "-r",
                    str(args.users),
                    "-t",
                    f"{args.seconds}s",
                    "--host",
                    url,
                    "--csv",
                    str(prefix),
                    "--only-summary",
                    "--loglevel",
                    "WARNING",
                ],
                check=True,
            )
            rows = {r["Name"]: r for r in csv.DictReader(open(f"{prefix}_stats.csv"))}
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
