"""`gankit bench serve`: load test of `gankit serve` on loopback, and ONNX Runtime vs eager.

Protocol. A digits-DCGAN generator (the architecture of `configs/digits-dcgan.yaml`: latent 64,
width 64, 8x8 output; random weights, which do not change the speed) and, when the tabular
package provides one, a GAN imputer fitted briefly on breast_cancer are served by `gankit serve`
in a subprocess (one uvicorn worker, 1 model thread, API keys + audit log + metrics on). An
asyncio client in this process keeps 16 keep-alive connections busy for `duration` seconds per
scenario (generate n=1, generate n=64, impute 1 row) and records every latency. The client
competes with the server for the same CPU cores. Reported: requests/s, p50/p99 latency, errors,
the server's peak RSS, and the model's raw forward time measured in this run (so the service
overhead is p50 minus forward; for the imputer, the `transform_numeric` call the service makes,
also timed at 16 and 64 rows since concurrent one-row requests are joined into one call). The
full run also serves impute 1 row with micro-batching off (`--micro-batch 0`). Then eager
PyTorch and ONNX Runtime are timed at batch 1 and 64 (1 thread, median of repeated calls).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gankit.bench.common import format_table
from gankit.export import median_ms
from gankit.modeldir import write_model_dir
from gankit.nets import architecture_spec, build_generator
from gankit.registry import IMAGE_GENERATOR, TOY_GENERATOR
from gankit.registry import family as registry_family

CLIENTS = 16
REFERENCE = [
    {
        "setup": "FastAPI + uvicorn[standard], API key + torch MLP + Prometheus, wrk -c32, 2 cores",
        "requests_per_s": 1557,
        "source": "shared/research/ecosystem.md §1 (measured on this machine type)",
    },
    {
        "setup": "DCGAN 32x32 generator, 1 thread: eager 1.06-1.15 ms, ORT 0.33-0.37 ms (batch 1)",
        "ort_speedup_batch1": 3.1,
        "source": "shared/research/ecosystem.md §2",
    },
]
TARGETS = {
    "generate_n1_requests_per_s": 1000,
    "generate_n1_p99_ms": 20,
    "ort_speedup_batch1": 2.0,
    "impute_1row_requests_per_s": 1000,  # issue 15
    "impute_1row_p99_ms": 20,
}


def make_generator_dir(
    directory: str | Path,
    family: str = "dcgan",
    shape: tuple[int, ...] = (1, 8, 8),
    latent_dim: int = 64,
    width: int = 64,
    seed: int = 0,
    name: str | None = None,
) -> Path:
    """Write a generator model directory (random weights) that `gankit.load_generator` reads."""
    torch.manual_seed(seed)
    section = registry_family(family).config_class()
    model = asdict(section(family=family, latent_dim=latent_dim, g_width=width, init="dcgan"))
    arch = architecture_spec(model, shape)
    net = build_generator(arch).eval()
    is_image = len(shape) == 3
    spec: dict[str, Any] = {
        "kind": IMAGE_GENERATOR if is_image else TOY_GENERATOR,
        "architecture": arch,
        "latent_dim": latent_dim,
        "num_classes": None,
        "data": {"name": "digits" if is_image else "ring", "shape": list(shape), "range": [-1, 1]},
        "step": 0,
        "config": {"model": model},
    }
    if name:
        spec["name"] = name
    return write_model_dir(directory, net.state_dict(), spec)


QUICK_IMPUTER = {"n_steps": 50, "ridge": 1e-3}
FULL_IMPUTER = {"n_steps": 500}


def make_imputer_dir(directory: Path, quick: bool) -> Path | None:
    """A GAN imputer fitted on 8 breast_cancer columns with 20% of cells removed (or None if the
    tabular package has no GANImputer). Quick mode fixes the ridge and trains 50 steps."""
    try:
        from gankit.tabular import GANImputer
    except ImportError:
        return None
    from sklearn.datasets import load_breast_cancer

    x = load_breast_cancer(as_frame=True).data.iloc[:, :8]
    x = x.mask(np.random.default_rng(0).random(x.shape) < 0.2)
    imputer = GANImputer(**(QUICK_IMPUTER if quick else FULL_IMPUTER), random_state=0)
    imputer.fit(x)
    imputer.save(directory)
    return directory


# --------------------------------------------------------------------------- server process


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    model_dirs: list[Path], keys: Path, audit: Path, extra: Sequence[str] = ()
) -> tuple[Any, int]:
    """Start `gankit serve` in a subprocess; wait until it accepts connections."""
    port = free_port()
    cmd = [sys.executable, "-m", "gankit.cli", "serve", *map(str, model_dirs), "--port", str(port)]
    cmd += ["--api-keys", str(keys), "--audit-log", str(audit), "--log-level", "warning", *extra]
    cmd += ["--rate", "0", "--address-rate", "0"]  # capacity is measured, not the rate limits
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            error = proc.stderr.read().decode()[-2000:] if proc.stderr else ""
            raise RuntimeError(f"gankit serve exited: {error}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gankit serve did not start within 60 s")


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a process, in MiB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def stop_server(proc: Any) -> None:
    """Terminate the server process (and wait for it)."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- load client


async def _client(
    port: int, request: bytes, deadline: float, lat: list[float], bad: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - start)
            if status != 200:
                bad.append(status)
    finally:
        writer.close()


def http_request(path: str, body: dict[str, Any], key: str) -> bytes:
    """One keep-alive HTTP/1.1 POST with a JSON body."""
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def load_test(port: int, request: bytes, seconds: float, clients: int = CLIENTS) -> dict[str, Any]:
    """`clients` connections sending `request` back to back for `seconds`."""
    latencies: list[float] = []
    errors: list[int] = []

    async def main() -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            *(_client(port, request, deadline, latencies, errors) for _ in range(clients))
        )

    start = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - start
    arr = np.asarray(latencies) * 1000
    return {
        "requests": int(arr.size),
        "seconds": round(wall, 2),
        "requests_per_s": round(arr.size / wall, 1),
        "p50_ms": round(float(np.percentile(arr, 50)), 3) if arr.size else None,
        "p99_ms": round(float(np.percentile(arr, 99)), 3) if arr.size else None,
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
    }


# --------------------------------------------------------------------------- raw model timing


def runtime_comparison(model_dir: Path, seconds: float) -> list[dict[str, Any]]:
    """Eager PyTorch vs ONNX Runtime vs ORT int8 decode time at batch 1 and 64, 1 thread."""
    from gankit.export import ort_session
    from gankit.generator import load_generator

    generator = load_generator(model_dir)
    sessions = {"onnxruntime": ort_session(model_dir / "model.onnx")}
    if (model_dir / "model.int8.onnx").is_file():
        sessions["onnxruntime int8"] = ort_session(model_dir / "model.int8.onnx")
    rows = []
    for batch in (1, 64):
        z = torch.randn(batch, generator.latent_dim)
        with torch.inference_mode():
            eager = median_ms(lambda z=z: generator.module(z), seconds)
        row = {"batch": batch, "eager_ms": eager}
        for name, session in sessions.items():
            key = name.replace("onnxruntime", "ort").replace(" ", "_") + "_ms"
            row[key] = median_ms(lambda s=session, z=z: s.run(None, {"z": z.numpy()}), seconds)
        row["ort_speedup"] = round(eager / row["ort_ms"], 2)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- the benchmark


def _scenarios(imputer: Path | None) -> list[tuple[str, str, dict[str, Any]]]:
    out = [
        ("generate n=1", "/v1/generate", {"model": "digits", "n": 1}),
        ("generate n=64", "/v1/generate", {"model": "digits", "n": 64}),
    ]
    if imputer is not None:
        from gankit.modeldir import read_spec
        from gankit.serve.models import columns_from_schema

        columns = columns_from_schema(read_spec(imputer).get("schema"), str(imputer))
        row = {c.name: (None if i % 3 == 0 else (c.low or 0.0)) for i, c in enumerate(columns)}
        out.append(("impute 1 row", "/v1/impute", {"model": "imputer", "rows": [row]}))
    return out


QUICK_SECONDS = 2.0
FULL_SECONDS = 30.0


def _servers(quick: bool) -> list[tuple[str, list[str], tuple[str, ...], str]]:
    """(label, `gankit serve` flags, scenarios, forward-time key) per server configuration."""
    out: list[tuple[str, list[str], tuple[str, ...], str]] = [
        (
            "torch (default: micro-batch auto)",
            ["--runtime", "torch"],
            ("generate n=1", "generate n=64", "impute 1 row"),
            "eager_ms",
        ),
        (
            "onnxruntime",
            ["--runtime", "onnx"],
            ("generate n=1",) if quick else ("generate n=1", "generate n=64"),
            "ort_ms",
        ),
    ]
    if not quick:  # what cross-request batching of /v1/impute is worth (issue 15)
        out.append(
            ("torch, micro-batch off", ["--runtime", "torch", "--micro-batch", "0"], IMPUTE, "")
        )
    return out


IMPUTE = ("impute 1 row",)


BATCHING = [
    ("torch", ["--runtime", "torch", "--micro-batch", "0"]),
    (
        "torch + micro-batch (no wait)",
        ["--runtime", "torch", "--micro-batch", "64", "--batch-wait-ms", "0"],
    ),
    (
        "torch + micro-batch (2 ms wait)",
        ["--runtime", "torch", "--micro-batch", "64", "--batch-wait-ms", "2"],
    ),
    ("onnxruntime", ["--runtime", "onnx"]),
    (
        "onnxruntime + micro-batch (no wait)",
        ["--runtime", "onnx", "--micro-batch", "64", "--batch-wait-ms", "0"],
    ),
]


PAIRED_IMPUTE = ("torch", "torch + micro-batch (no wait)")  # also impute 1 row (issue 15)


def paired_batching(
    served: list[Path],
    keys: Path,
    key: str,
    work: Path,
    rounds: int,
    seconds: float,
    imputer: Path | None = None,
) -> list[dict[str, Any]]:
    """Generate n=1 (and impute 1 row on the PAIRED_IMPUTE servers) against each BATCHING server
    in turn, `rounds` times (all servers up at once, idle ones use no CPU), so that drifting
    background load hits every configuration alike."""
    bodies = {name: (path, body) for name, path, body in _scenarios(imputer)}
    jobs = [(i, "generate n=1") for i in range(len(BATCHING))]
    if imputer is not None:
        jobs += [(i, "impute 1 row") for i, (lb, _) in enumerate(BATCHING) if lb in PAIRED_IMPUTE]
    procs = []
    try:
        for i, (_, flags) in enumerate(BATCHING):
            procs.append(start_server(served, keys, work / f"audit-batching-{i}.jsonl", flags))
        requests = {name: http_request(*bodies[name], key) for name in {j[1] for j in jobs}}
        runs: dict[tuple[int, str], list[dict[str, Any]]] = {job: [] for job in jobs}
        for _ in range(rounds):
            for i, scenario in jobs:
                runs[(i, scenario)].append(load_test(procs[i][1], requests[scenario], seconds))
    finally:
        for proc, _ in procs:
            stop_server(proc)
    out = []
    for (i, scenario), results in runs.items():
        label, flags = BATCHING[i]
        rps = [r["requests_per_s"] for r in results]
        out.append(
            {
                "server": label,
                "scenario": scenario,
                "flags": flags,
                "rounds": rounds,
                "seconds_per_round": seconds,
                "requests_per_s_median": round(float(np.median(rps)), 1),
                "requests_per_s_rounds": rps,
                "p50_ms_median": round(float(np.median([r["p50_ms"] for r in results])), 3),
                "p99_ms_median": round(float(np.median([r["p99_ms"] for r in results])), 3),
                "errors": sum(r["errors"] for r in results),
            }
        )
    return out


def imputer_forward_ms(imputer: Path, seconds: float, rows: int = 1) -> float:
    """Median time of the imputer's call as the service makes it, on `rows` copies of the row
    the load test sends: `transform_numeric` on a float array (numeric imputers), else the
    DataFrame path."""
    from gankit.serve.metrics import ServeMetrics
    from gankit.serve.numeric import NumericImputer, serves
    from gankit.serve.stream import load_imputer

    model = load_imputer(imputer)
    row = _scenarios(imputer)[-1][2]["rows"] * rows
    if serves(model):
        fast = NumericImputer(model, ServeMetrics())
        x = fast.check(row)
        return median_ms(lambda: fast.fill(x), seconds)
    frame = model.check_rows(row).frame
    return median_ms(lambda: model.impute(frame), seconds)


def run(quick: bool = False, seeds: int | None = None) -> dict[str, Any]:
    """Run the protocol; `quick` uses 2 s per scenario and the fast legacy ONNX exporter."""
    from gankit.export import export_model
    from gankit.serve.auth import add_key

    torch.set_num_threads(1)
    duration = QUICK_SECONDS if quick else FULL_SECONDS
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gankit-bench-serve-") as tmp:
        work = Path(tmp)
        digits = make_generator_dir(work / "digits", name="digits")
        export_model(digits, quantize=True, exporter="torchscript" if quick else "dynamo")
        imputer = make_imputer_dir(work / "imputer", quick)
        served = [digits] + ([imputer] if imputer is not None else [])
        runtime = runtime_comparison(digits, 0.3 if quick else 3.0)
        forward = {key: {r["batch"]: r[key] for r in runtime} for key in ("eager_ms", "ort_ms")}
        timing = 0.3 if quick else 3.0
        impute_rows = (
            {n: imputer_forward_ms(imputer, timing, n) for n in (1, 16, 64)} if imputer else {}
        )
        impute_ms = impute_rows.get(1)
        key = add_key(work / "keys.json", "bench", "admin")
        scenarios: list[dict[str, Any]] = []
        for label, flags, wanted, forward_key in _servers(quick):
            audit = work / f"audit-{len(scenarios)}.jsonl"
            proc, port = start_server(served, work / "keys.json", audit, flags)
            try:
                rows = []
                for name, path, body in _scenarios(imputer):
                    if name not in wanted:
                        continue
                    result = load_test(port, http_request(path, body, key), duration)
                    n = body.get("n")
                    fwd = forward[forward_key].get(n) if n else impute_ms
                    result.update(scenario=name, server=label, forward_ms=fwd)
                    rows.append(result)
                rss = peak_rss_mb(proc.pid)
            finally:
                stop_server(proc)
            audit_lines = len(audit.read_text().splitlines())
            for row in rows:
                row.update(server_peak_rss_mb=rss, audit_lines_total=audit_lines)
                if row["forward_ms"] is not None and row["p50_ms"] is not None:
                    row["overhead_p50_ms"] = round(row["p50_ms"] - row["forward_ms"], 3)
            scenarios += rows
        batching = (
            [] if quick else paired_batching(served, work / "keys.json", key, work, 5, 6.0, imputer)
        )
    result = _result(scenarios, runtime, duration, imputer is not None)
    result["micro_batching"] = batching
    result["imputer_forward_ms_by_rows"] = impute_rows
    if batching:
        result["table"] += "\n\n" + _batching_table(batching)
    result["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    return result


def _batching_table(batching: list[dict[str, Any]]) -> str:
    """The paired micro-batching rounds as a table."""
    headers = [
        "server (paired rounds)",
        "scenario",
        "req/s (median)",
        "p50 ms",
        "p99 ms",
        "errors",
    ]
    rows = [
        [
            b["server"],
            b["scenario"],
            b["requests_per_s_median"],
            b["p50_ms_median"],
            b["p99_ms_median"],
            b["errors"],
        ]
        for b in batching
    ]
    return format_table(headers, rows)


def _result(
    scenarios: list[dict], runtime: list[dict], duration: float, has_imputer: bool
) -> dict[str, Any]:
    headers = [
        "server",
        "scenario",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "forward ms",
        "overhead ms",
        "RSS MB",
    ]
    rows = [
        [
            s["server"],
            s["scenario"],
            s["requests_per_s"],
            s["p50_ms"],
            s["p99_ms"],
            s["errors"],
            s.get("forward_ms"),
            s.get("overhead_p50_ms"),
            s.get("server_peak_rss_mb"),
        ]
        for s in scenarios
    ]
    rt_headers = ["batch", "eager ms", "ORT ms", "ORT int8 ms", "ORT speed-up"]
    rt_rows = [
        [r["batch"], r["eager_ms"], r["ort_ms"], r.get("ort_int8_ms"), r["ort_speedup"]]
        for r in runtime
    ]
    table = format_table(headers, rows) + "\n\n" + format_table(rt_headers, rt_rows)
    return {
        "protocol": __doc__.split("\n\n", 1)[1].strip(),
        "clients": CLIENTS,
        "duration_s": duration,
        "cpu_count": os.cpu_count(),
        "imputer": "gankit.tabular.GANImputer"
        if has_imputer
        else "not available (tabular package missing)",
        "scenarios": scenarios,
        "runtime": runtime,
        "targets": TARGETS,
        "reference": REFERENCE,
        "table": table,
    }
