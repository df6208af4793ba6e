"""The CUDA paths the CPU test suite cannot reach, in one short run for a lent GPU machine.

    python scripts/gpu_check.py --out /tmp/gpu-check      # writes gpu_check.json there

Checks, each reported as ok/failed/skipped with numbers:
1. bf16 autocast: a digits DCGAN trains 200 steps on CUDA with train.amp=bf16 (finite losses);
   steps/s against the same run in fp32 and on the CPU (a ratio measured in the same run).
2. placement: G and D on cuda:0 and cuda:1 (needs two GPUs; with one, both on cuda:0 through
   the hooks) train and sample.
3. DDP over NCCL and FSDP2: `torchrun --nproc_per_node N` (N = GPUs, at least 2 needed) with
   train.parallel ddp and fsdp; the run finishes and writes its model directory.
Nothing here is a test of the suite: the suite runs on CPU; this records what the GPU did.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

DIGITS = ["data.name=digits", "model.family=dcgan", "train.batch_size=64", "train.progress=false"]


def timed_run(out: Path, *overrides: str) -> dict:
    from gankit.config import load_config
    from gankit.engine import train

    cfg = load_config("configs/digits-dcgan.yaml", [*DIGITS, *overrides])
    start = time.perf_counter()
    run = train(cfg, out)
    seconds = time.perf_counter() - start
    losses = [h.get("loss_g") for h in run.history if "loss_g" in h]
    finite = all(v is not None and v == v and abs(v) < float("inf") for v in losses)
    return {"steps": run.step, "seconds": round(seconds, 2), "finite": finite}


def check(name: str, results: dict, fn) -> None:
    try:
        results[name] = {"status": "ok", **fn()}
    except Exception as exc:  # a report, not a test: record and go on
        results[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    print(name, results[name], flush=True)


def torchrun(out: Path, parallel: str, gpus: int) -> dict:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}",
        "-m", "gankit.cli", "train", "configs/digits-dcgan.yaml", "--out", str(out),
        *[f"--set={o}" for o in [*DIGITS, "train.steps=200", f"train.parallel={parallel}",
                                  "train.ema=0", "train.device=cuda"]],
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    seconds = round(time.perf_counter() - start, 2)
    return {"seconds": seconds, "wrote": (out / "model.json").exists()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu-check"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gpus = torch.cuda.device_count()
    results: dict = {"gpus": gpus, "torch": torch.__version__}
    if gpus:
        results["device"] = torch.cuda.get_device_name(0)
        steps = "train.steps=200"
        check("bf16", results, lambda: timed_run(args.out / "bf16", steps, "train.amp=bf16"))
        check("fp32", results, lambda: timed_run(args.out / "fp32", steps, "train.amp=off"))
        check("cpu", results, lambda: timed_run(args.out / "cpu", steps, "train.device=cpu"))
        second = "cuda:1" if gpus > 1 else "cuda:0"
        placement = f"train.placement={{g: cuda:0, d: {second}}}"
        check("placement", results, lambda: timed_run(args.out / "placed", steps, placement))
    if gpus >= 2:
        for parallel in ("ddp", "fsdp"):
            check(parallel, results, lambda p=parallel: torchrun(args.out / p, p, gpus))
    else:
        results["ddp"] = results["fsdp"] = {"status": "skipped", "why": f"{gpus} GPU(s)"}
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
