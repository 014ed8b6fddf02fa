"""Benchmark: ``ganforge serve`` under load on loopback (issue 14).

Usage:
    python benchmarks/serve_load.py --run RUN_DIR [--concurrency 8] [--requests 3000] [--n 16] [--threads 1]

Starts ``ganforge serve RUN --port P`` in its own process, waits for ``GET /health``, then keeps
``--concurrency`` requests in flight (httpx, one asyncio client) until ``--requests`` have completed
or ``--max-seconds`` have passed: each ``POST /generate {"n": N, "seed": i}`` must come back 200 with
a PNG. Reports requests/s, latency percentiles, errors, and how many generator passes the server's
micro-batcher needed. Server and client share the machine's cores, as on a laptop.

Issue 14's target: >= 200 requests/s of 16-image PNG grids at concurrency 8 on 2 cores, zero errors.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def load(url: str, concurrency: int, total: int, n: int, max_seconds: float) -> dict:
    latencies, errors, codes = [], 0, {}
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                if time.perf_counter() - start > max_seconds:
                    return
                t0 = time.perf_counter()
                try:
                    r = await client.post("/generate", json={"n": n, "seed": i})
                    ok = r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
                    codes[r.status_code] = codes.get(r.status_code, 0) + 1
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
        health = (await client.get("/health")).json()
    lat = np.array(latencies) * 1000
    return {"requests": len(lat), "seconds": wall, "requests_per_s": len(lat) / wall, "errors": errors,
            "status_codes": codes, "latency_ms": {"p50": float(np.percentile(lat, 50)),
                                                  "p90": float(np.percentile(lat, 90)),
                                                  "p99": float(np.percentile(lat, 99)), "max": float(lat.max())},
            "server": health}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in the server")
    ap.add_argument("--max-seconds", type=float, default=60)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    port = free_port()
    cmd = ["ganforge", "serve", str(args.run), "--port", str(port), "--threads", str(args.threads)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or server.poll() is not None:
                raise SystemExit(f"the server did not start: {server.stderr.read() if server.poll() else ''}")
            time.sleep(0.2)
        asyncio.run(load(url, args.concurrency, 100, args.n, 30))  # warm-up, not counted
        result = asyncio.run(load(url, args.concurrency, args.requests, args.n, args.max_seconds))
    finally:
        server.terminate()
        server.wait(10)
    result = {"command": " ".join(cmd), "concurrency": args.concurrency, "images_per_request": args.n, **result}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
