"""ProGAN (Karras et al. 2018, "Progressive Growing of GANs for Improved Quality, Stability,
and Variation") as a model step.

Training starts at 4×4 and doubles the resolution phase by phase (`model.resolutions`): 4 px
is trained for `phase_steps`, then each new resolution first fades in over `fade_steps`
(alpha rises linearly from 0 to 1: the new block's output is blended with the previous
resolution's, upsampled, in G; and in D likewise) and is then trained for `phase_steps`. Real
images are average-pooled to the current resolution, and during a fade blended the same way
(section A.1). Every block is built up front, so the engine's optimizers hold every parameter
from the start; the stage and alpha are a function of the model's step counter (checkpointed),
so resuming inside a fade continues bit for bit.

The loss is WGAN-GP (Gulrajani et al. 2017) with the paper's drift term,
L_D = E[D(G(z))] - E[D(x)] + λ E[(‖∇D(x̂)‖ - 1)²] + ε_drift E[D(x)²],  L_G = -E[D(G(z))],
with equalised learning rate, pixel norm in G and minibatch standard deviation in D
(`gankit.nets.progan`). Data whose size differs from the last resolution is resized to it
(bilinear, antialiased): 8×8 digits grow to 32 px this way.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.engine.model import Batches, GenerativeModel, update
from gankit.errors import CheckpointError, ConfigError
from gankit.modeldir import check_bounds, check_module_fits, read_model_dir, weight_shapes
from gankit.nets.progan import build_networks, check_architecture
from gankit.objectives import GradientPenalty, wasserstein_d, wasserstein_g
from gankit.registry import PROGAN_KIND

PREVIEW_SAMPLES = 64


def schedule(step: int, stages: int, phase: int, fade: int) -> tuple[int, float]:
    """(stage, alpha) at training step `step` (0-based): 4 px for `phase` steps, then per new
    resolution `fade` steps with alpha = t / fade, then `phase` steps at alpha 1; the last
    resolution stays once reached."""
    if step < phase or stages == 1:
        return 0, 1.0
    t = step - phase
    for stage in range(1, stages):
        if t < fade:
            return stage, t / fade
        t -= fade
        if t < phase or stage == stages - 1:
            return stage, 1.0
        t -= phase
    return stages - 1, 1.0


def schedule_length(stages: int, phase: int, fade: int) -> int:
    """Steps until the last resolution has had its fade and its stable phase."""
    return phase + (stages - 1) * (fade + phase)


def resize_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square images to size×size: average pooling when shrinking by a power of 2, else
    bilinear (antialiased) resampling."""
    h = x.shape[-1]
    if h == size:
        return x
    if h > size and h % size == 0:
        return F.avg_pool2d(x, h // size)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def fade_real(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images during a fade: alpha × x + (1 - alpha) × x at half resolution, upsampled."""
    if alpha >= 1.0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    return alpha * x + (1.0 - alpha) * low


def critic_loss(real: torch.Tensor, fake: torch.Tensor, drift: float) -> torch.Tensor:
    """E[D(G(z))] - E[D(x)] + ε_drift E[D(x)²] (the penalty is added separately)."""
    return wasserstein_d(real, fake) + drift * real.square().mean()


class _AtStage:
    """D with the stage and alpha bound: x -> scores, what `GradientPenalty` calls."""

    def __init__(self, d: nn.Module, stage: int, alpha: float) -> None:
        self.d, self.stage, self.alpha = d, stage, alpha

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.d(x, self.stage, self.alpha)


# -------------------------------------------------------------------------- the engine model
def architecture(cfg: Any, channels: int) -> dict[str, Any]:
    """The `architecture` entry of model.json."""
    m = cfg.model
    return {
        "latent_dim": int(m.latent_dim),
        "resolutions": [int(r) for r in m.resolutions],
        "widths": [int(w) for w in m.widths],
        "channels": int(channels),
        "minibatch_std_group": int(m.minibatch_std_group),
    }


def check_config(cfg: Any) -> None:
    m = cfg.model
    for key in ("phase_steps", "fade_steps"):
        if getattr(m, key) < 0:
            raise ConfigError(f"model.{key} = {getattr(m, key)!r} must be >= 0")
    if m.phase_steps == 0 and m.fade_steps == 0 and len(m.resolutions) > 1:
        raise ConfigError("model.phase_steps and model.fade_steps cannot both be 0")
    for key in ("gradient_penalty", "drift"):
        if getattr(m, key) < 0:
            raise ConfigError(f"model.{key} = {getattr(m, key)!r} must be >= 0")
    if not 1 <= m.minibatch_std_group <= cfg.train.batch_size:
        raise ConfigError(
            f"model.minibatch_std_group = {m.minibatch_std_group} must be in "
            f"1..train.batch_size ({cfg.train.batch_size})"
        )
    if not 1 <= m.latent_dim <= 1 << 16:
        raise ConfigError(f"model.latent_dim = {m.latent_dim} must be in 1..65536")


def build(cfg) -> tuple[ProGAN, Any]:
    """ProGAN and its batch provider (the registry builder of family `progan`)."""
    from gankit.data.source import Dataset, TensorBatches, load_dataset

    check_config(cfg)
    dataset = load_dataset(cfg.data)
    if not dataset.is_image or dataset.x.shape[-1] != dataset.x.shape[-2]:
        raise ConfigError(
            f"model.family = 'progan' needs square images; data {dataset.name!r} has shape "
            f"{dataset.shape}"
        )
    arch = architecture(cfg, dataset.shape[0])
    check_architecture(arch)
    final = arch["resolutions"][-1]
    native = dataset.shape[-1]
    if native != final:
        dataset = Dataset(resize_to(dataset.x, final).clamp(-1, 1), dataset.labels, dataset.name)
    model = ProGAN(cfg, dataset, arch, native)
    return model, TensorBatches(dataset, cfg.train.batch_size, cfg.train.seed)


class ProGAN(GenerativeModel):
    """Generator `g` and critic `d` with every resolution's blocks; the step trains the stage
    the schedule names."""

    def __init__(self, cfg, dataset, arch: dict[str, Any], native: int) -> None:
        super().__init__()
        self.cfg, self.dataset, self.arch, self.native = cfg, dataset, arch, native
        g, d = build_networks(arch)
        self.networks = {"g": g, "d": d}
        for net in self.networks.values():  # a step uses its stage's blocks only (under DDP)
            net.ddp_find_unused_parameters = True
        m, t = cfg.model, cfg.train
        self.resolutions = arch["resolutions"]
        self.phase, self.fade = m.phase_steps, m.fade_steps
        self.penalty = GradientPenalty(m.gradient_penalty)
        self.drift = m.drift
        self.latent_dim, self.batch_size = m.latent_dim, t.batch_size
        self.steps = 0  # training steps taken: the schedule reads it
        self.noise = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_noise = torch.randn(
            PREVIEW_SAMPLES, self.latent_dim, generator=torch.Generator().manual_seed(t.seed + 2)
        )

    def stage(self) -> tuple[int, float]:
        """(stage, alpha) of the next step."""
        return schedule(self.steps, len(self.resolutions), self.phase, self.fade)

    # --- training -------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        from gankit.models.gan import make_optimizer

        t = self.cfg.train
        return {
            name: make_optimizer(
                t.optimizer, self.networks[name].parameters(), lr, t.betas, t.momentum
            )
            for name, lr in (("g", t.lr_g), ("d", t.lr_d))
        }

    def latent(self, batches: Batches) -> torch.Tensor:
        z = torch.randn(self.batch_size, self.latent_dim, generator=self.noise)
        return batches.local(z)

    def real(self, batches: Batches, stage: int, alpha: float) -> torch.Tensor:
        """The next real batch at the stage's resolution (blended during a fade)."""
        x = resize_to(batches.next().x, self.resolutions[stage])
        return fade_real(x, alpha) if stage > 0 else x

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """`d_steps` critic updates (WGAN-GP + drift), then one generator update, at the
        schedule's stage and alpha."""
        stage, alpha = self.stage()
        g, d = self.live["g"], self.live["d"]
        clip = self.cfg.train.grad_clip
        for _ in range(self.cfg.train.d_steps):
            real = self.real(batches, stage, alpha)
            with torch.no_grad(), self.autocast():
                fake = g(self.latent(batches), stage, alpha)
            with self.autocast():
                real_scores, fake_scores = d(real, stage, alpha), d(fake, stage, alpha)
                loss_d = critic_loss(real_scores.float(), fake_scores.float(), self.drift)
                if self.penalty.weight > 0:
                    loss_d = loss_d + self.penalty(_AtStage(d, stage, alpha), real, fake)
            update(loss_d, optimizers["d"], self.networks["d"].parameters(), clip)
        with self.autocast():
            loss_g = wasserstein_g(d(g(self.latent(batches), stage, alpha), stage, alpha).float())
        update(loss_g, optimizers["g"], self.networks["g"].parameters(), clip)
        self.steps += 1
        return {
            "loss_d": float(loss_d.detach()),
            "loss_g": float(loss_g.detach()),
            "d_real": float(real_scores.detach().mean()),
            "d_fake": float(fake_scores.detach().mean()),
            "resolution": float(self.resolutions[stage]),
            "alpha": alpha,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.steps = int(state["steps"])

    # --- sampling and saving ----------------------------------------------------------------
    @torch.no_grad()
    def generate(self, z: torch.Tensor, stage: int | None = None) -> torch.Tensor:
        """G's images for codes z at the current stage (or `stage`, alpha 1), shown at the last
        resolution (nearest upsampling) and clamped to [-1, 1]."""
        net = self.sampling_network("g")
        now, alpha = self.stage_done()
        stage, alpha = (now, alpha) if stage is None else (stage, 1.0)
        was_training = net.training
        net.eval()
        out = net(z.to(self.device), stage, alpha).float().cpu()
        net.train(was_training)
        return upsample_to(out, self.resolutions[-1]).clamp(-1, 1)

    def stage_done(self) -> tuple[int, float]:
        """(stage, alpha) of the last step taken: what the weights were trained at."""
        return schedule(max(self.steps - 1, 0), len(self.resolutions), self.phase, self.fade)

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.generate(torch.randn(n, self.latent_dim, generator=gen))

    def preview(self) -> tuple[torch.Tensor, None]:
        return self.generate(self.fixed_noise), None

    def spec(self) -> dict[str, Any]:
        from gankit import __version__
        from gankit.config import to_dict

        stage, alpha = self.stage_done()
        return {
            "kind": PROGAN_KIND,
            "architecture": self.arch,
            "stage": stage,
            "alpha": alpha,
            "resolution": self.resolutions[stage],
            "latent_dim": self.latent_dim,
            "num_classes": None,
            "data": self.dataset.spec(),
            "preprocessing": {
                "range": [-1, 1],
                "description": "pixels scaled linearly to [-1, 1]"
                + (
                    f"; resized from {self.native} px to {self.resolutions[-1]} px (bilinear)"
                    if self.native != self.resolutions[-1]
                    else ""
                ),
            },
            "ema": "g" in self.averages,
            "config": to_dict(self.cfg),
            "gankit_version": __version__,
        }

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """G (its EMA when kept), every resolution's blocks."""
        return dict(self.sampling_network("g").state_dict()), self.spec()


def upsample_to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Nearest upsampling of square images to size×size (a no-op at that size)."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, scale_factor=size // x.shape[-1], mode="nearest")


# ------------------------------------------------------------------------------------ loading
class ProGANSampler(nn.Module):
    """z -> G's images at the saved stage and alpha, at the last resolution in [-1, 1]: the
    module a loaded ProGAN samples with."""

    def __init__(self, g: nn.Module, stage: int, alpha: float, size: int) -> None:
        super().__init__()
        self.g, self.stage, self.alpha, self.size = g, stage, alpha, size

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return upsample_to(self.g(z, self.stage, self.alpha), self.size).clamp(-1, 1)


def check_progan_spec(path: Any, spec: dict[str, Any]) -> None:
    """CheckpointError unless model.json fits the weights, allocating nothing."""
    where = f"{path}/model.json"
    arch = spec.get("architecture")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{where}: 'architecture' must be an object")
    check_bounds(
        where,
        arch,
        {"latent_dim": (1, 1 << 16), "channels": (1, 4), "minibatch_std_group": (1, 1 << 16)},
    )
    check_bounds(where, spec, {"stage": (0, len(arch.get("resolutions") or []) - 1)})
    alpha = spec.get("alpha")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise CheckpointError(f"{where}: 'alpha' is {alpha!r}, expected a number in [0, 1]")
    try:
        check_architecture(arch)
    except ConfigError as exc:
        raise CheckpointError(f"{where}: {exc}") from exc
    check_module_fits(lambda: build_networks(arch)[0], weight_shapes(path), where=where)


def load_progan(path: str | os.PathLike, device: Any = "cpu"):
    """Load a ProGAN model directory as a `gankit.generator.Generator` (sample, decode,
    interpolate) at its saved stage; hashes and spec checked first, no pickle."""
    from gankit.generator import Generator

    tensors, spec = read_model_dir(path, (PROGAN_KIND,), check=check_progan_spec)
    arch = spec["architecture"]
    g, _ = build_networks(arch)
    try:
        g.load_state_dict(tensors)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model.json ({exc})") from exc
    sampler = ProGANSampler(g, int(spec["stage"]), float(spec["alpha"]), arch["resolutions"][-1])
    return Generator(sampler, spec, device)


def serve_progan(directory: Any, spec: dict[str, Any], options: Any):
    """The service's adapter: a ProGAN behind the generate, latent and decode routes (torch, or
    ONNX Runtime on the `model.onnx` of `gankit export`, as plain generators)."""
    from gankit.serve.models import served_generator

    return served_generator(directory, spec, options, load_progan(directory))
