"""The label and code families under torchrun (issue 12 / 17): conditional GAN (projection and
ACGAN), BigGAN, InfoGAN and the semi-supervised GAN train with 2 gloo ranks on the same global
batch and end equal to one process.

DDP keeps batch-norm statistics per rank (docs/training.md), and every generator here has batch
norm, so the one-process reference runs each network on the two halves of the batch separately
(`Halves` in families_ddp_worker.py: what the two ranks see) — everything else is the plain
engine. The workers train the references too, after leaving the group, half each. Spectral
norm is off (its power iteration advances once per call, and the reference makes two calls
where a rank makes one) and the SSGAN's input noise is 0 (drawn per rank). The SSGAN's feature
matching compares batch means, which `ssgan.global_mean` takes over both ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from .test_distributed import free_port

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
COMMON = [
    "train.steps=3",
    "train.batch_size=16",
    "train.ema=0",
    "train.progress=false",
    "train.log_every=1",
    "train.checkpoint_every=100",
    "train.sample_every=100",
]
TINY_CONDITIONAL = ["model.latent_dim=8", "model.g_width=8", "model.d_width=8"]
FAMILIES = {
    "projection": ("digits-cgan.yaml", TINY_CONDITIONAL),
    "acgan": ("digits-acgan.yaml", TINY_CONDITIONAL),
    "biggan": (
        "digits-biggan.yaml",
        # SGD: G's conv biases feed batch norm, so their gradient is 0 up to float noise, which
        # Adam's normalised step would turn into ±lr moves that differ between the two runs
        [
            *TINY_CONDITIONAL,
            "model.embed_dim=4",
            "model.spectral_norm=false",
            "train.optimizer=sgd",
        ],
    ),
    "infogan": (
        "digits-infogan.yaml",
        [
            "model.g_width=8",
            "model.d_width=8",
            "model.q_width=8",
            "model.noise_dim=4",
            "model.d_batch_norm=false",
        ],
    ),
    "ssgan": (
        "digits-ssgan.yaml",
        [
            "model.g_width=16",
            "model.d_widths=[16, 8]",
            "model.latent_dim=4",
            "model.labelled_batch=8",
            "model.input_noise=0",
            "model.hidden_noise=0",
            "train.optimizer=sgd",  # as BigGAN: G's linear biases feed batch norm
        ],
    ),
}
# ProGAN trains under DDP too (its stages leave the other blocks' parameters unused, which the
# family declares): its ranks must agree, but it is not compared with one process, since the
# gradient penalty's interpolation coefficients are drawn per rank (docs/training.md)
RANKS_ONLY = {
    "progan": (
        "digits-progan.yaml",
        [
            "model.latent_dim=8",
            "model.widths=[8,8]",
            "model.phase_steps=1",
            "model.fade_steps=1",
        ],
    )
}
TOL = 1e-5  # float32 reduction order (DDP averages two half-batch gradients) is all that differs


def launch_two_ranks(worker: Path, *args: str, timeout: float = 240) -> None:
    """Two gloo ranks of `worker`, started directly with the env:// rendezvous variables that
    torchrun would set (its launcher process costs a torch import first); when one rank fails,
    the other is stopped instead of waiting in a collective."""
    port = str(free_port())
    procs = []
    for rank in range(2):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
        env.update(MASTER_PORT=port, WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank))
        cmd = [sys.executable, str(worker), *args]
        procs.append(subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    errors = [p.communicate()[1][-3000:] for p in procs if p.wait() != 0]
    assert not errors, "\n".join(errors)


def test_label_and_code_families_match_one_process(tmp_path):
    """One 2-rank launch trains the five families (and ProGAN) in turn; per family both ranks
    hold the same parameters, equal to one process on the same global batch to 1e-5."""
    every = {**FAMILIES, **RANKS_ONLY}
    plan = {
        "ddp": {name: (str(CONFIGS / r), [*o, *COMMON]) for name, (r, o) in every.items()},
        "reference": list(FAMILIES),
    }
    (tmp_path / "families.json").write_text(json.dumps(plan))
    launch_two_ranks(Path(__file__).with_name("families_ddp_worker.py"), str(tmp_path))
    for name in every:
        rank0 = load_file(tmp_path / f"{name}.rank0.safetensors")
        rank1 = load_file(tmp_path / f"{name}.rank1.safetensors")
        assert rank0.keys() == rank1.keys()
        assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), name
    for name in FAMILIES:
        rank0 = load_file(tmp_path / f"{name}.rank0.safetensors")
        reference = load_file(tmp_path / f"{name}.single.safetensors")
        assert reference.keys() == rank0.keys(), name
        for key, value in reference.items():
            torch.testing.assert_close(rank0[key], value, rtol=TOL, atol=TOL, msg=f"{name}: {key}")
