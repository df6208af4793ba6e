"""The variational autoencoder of Kingma & Welling 2014 ("Auto-Encoding Variational Bayes").

An encoder `enc` gives a diagonal Gaussian q(z|x) = N(mu(x), diag(exp(logvar(x)))); a decoder
`dec` gives p(x|z), Gaussian (mean from the network, standard deviation fixed or learned per
pixel) or Bernoulli (logits; pixels in [lo, hi] are read as probabilities in [0, 1]). One Adam
(or the configured optimizer) maximises the ELBO

    E_q[log p(x|z)] - KL(q(z|x) || N(0, I))

with the reparameterisation z = mu + exp(logvar / 2) * eps, eps ~ N(0, I) and the analytic KL.
Options: a linear KL warm-up (beta rises from 1/T to 1 over `kl_warmup_steps`, a schedule kept
inside the model and checkpointed) and uniform dequantisation of the training inputs (so a
Gaussian decoder models a density on continuous data, the protocol of `gankit bench vae`).

`iwae_bound(model, x, k)` is the importance-weighted bound of Burda et al. 2016 on log p(x)
(k = 1 is the single-sample ELBO estimate; it rises towards log p(x) as k grows).
A trained model is a directory of kind `vae`; `load_vae` reads it back (no pickle; the spec is
checked against the weights' shapes on the meta device first).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gankit.engine.model import Batches, GenerativeModel, update
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.modeldir import check_bounds, check_module_fits, read_model_dir, weight_shapes
from gankit.nets.layers import ACTIVATIONS
from gankit.nets.mlp import mlp
from gankit.registry import VAE_KIND

LIKELIHOODS = ("gaussian", "bernoulli")
LOG_STD_MIN = -7.0  # floor of a learned decoder log-std (a constant pixel cannot reach -inf)
LOGVAR_RANGE = (-30.0, 20.0)  # clamp of the encoder's log-variance (keeps exp finite)
PREVIEW_SAMPLES = 64
MAX_LATENT_DIM = 1 << 16
MAX_WIDTH = 1 << 16
MAX_LAYERS = 32
MAX_VALUES = 1 << 24  # values per sample (the data shape's product)
LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------- networks
class Encoder(nn.Module):
    """x (any shape, flattened) -> MLP -> (mu, logvar) of q(z|x)."""

    def __init__(self, in_shape: Sequence[int], widths: Sequence[int], latent_dim: int, act: str):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = mlp(math.prod(in_shape), widths, 2 * latent_dim, act)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x.reshape(x.shape[0], -1)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


class Decoder(nn.Module):
    """z -> MLP (the encoder's widths reversed) -> the parameters of p(x|z), flattened.

    Gaussian: the mean (and `log_std`, one learned value per output, when `std` is 0);
    Bernoulli: the logits."""

    def __init__(
        self,
        latent_dim: int,
        widths: Sequence[int],
        out_shape: Sequence[int],
        act: str,
        likelihood: str,
        std: float,
    ):
        super().__init__()
        self.latent_dim, self.out_shape = latent_dim, tuple(out_shape)
        self.net = mlp(latent_dim, list(widths)[::-1], math.prod(out_shape), act)
        if likelihood == "gaussian" and std <= 0:
            self.log_std = nn.Parameter(torch.zeros(math.prod(out_shape)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def build_networks(arch: dict[str, Any]) -> tuple[Encoder, Decoder]:
    """Encoder and decoder from the `architecture` of a spec (or of a config)."""
    shape, widths = list(arch["shape"]), list(arch["widths"])
    enc = Encoder(shape, widths, arch["latent_dim"], arch["activation"])
    dec = Decoder(
        arch["latent_dim"],
        widths,
        shape,
        arch["activation"],
        arch["likelihood"],
        arch["decoder_std"],
    )
    return enc, dec


# ----------------------------------------------------------------------------- the objective
class Parts:
    """What the ELBO and the IWAE bound need: both networks, the likelihood and data range."""

    def __init__(self, enc: nn.Module, dec: nn.Module, arch: dict[str, Any], data_range: Any):
        self.enc, self.dec, self.arch = enc, dec, arch
        self.likelihood = arch["likelihood"]
        self.std = float(arch["decoder_std"])
        self.bounds = None if data_range is None else tuple(map(float, data_range))
        self.range = self.bounds or (-1.0, 1.0)  # Bernoulli reads [lo, hi] as [0, 1]

    def log_std(self, dec: nn.Module) -> torch.Tensor:
        if self.std > 0:
            return torch.tensor(math.log(self.std))
        log_std = getattr(dec, "module", dec).log_std  # a DDP wrapper keeps it on .module
        return log_std.clamp(min=LOG_STD_MIN)

    def log_px(self, out: torch.Tensor, x: torch.Tensor, dec: nn.Module) -> torch.Tensor:
        """log p(x|z) per sample, summed over every value of x; `out` is the decoder's output."""
        x = x.reshape(x.shape[0], -1).to(out.dtype)
        if self.likelihood == "bernoulli":
            lo, hi = self.range
            target = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
            return -F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(1)
        log_std = self.log_std(dec).to(out)
        z = (x - out) * torch.exp(-log_std)
        return (-0.5 * z.square() - log_std - 0.5 * LOG_2PI).sum(1)

    def mean(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder's mean in the data range (Bernoulli: probabilities mapped to [lo, hi];
        Gaussian: clamped to the data range when the data has one, as images do)."""
        if self.likelihood == "bernoulli":
            lo, hi = self.range
            return lo + (hi - lo) * torch.sigmoid(out)
        return out if self.bounds is None else out.clamp(*self.bounds)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per sample (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mu.square() + logvar.exp() - logvar - 1.0).sum(1)


def elbo_terms(
    parts: Parts,
    x: torch.Tensor,
    eps: torch.Tensor,
    enc: nn.Module | None = None,
    dec: nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(x|z), KL) per sample for one reparameterised z = mu + sigma * eps; the networks
    may run under autocast, the terms are computed in float32."""
    enc, dec = enc or parts.enc, dec or parts.dec
    mu, logvar = (t.float() for t in enc(x))
    z = mu + torch.exp(0.5 * logvar) * eps.to(mu)
    return parts.log_px(dec(z).float(), x.float(), dec), gaussian_kl(mu, logvar)


def _parts(model: Any) -> Parts:
    if isinstance(model, Parts):
        return model
    parts = getattr(model, "parts", None)
    if parts is None:
        raise ConfigError(f"{type(model).__name__} is not a VAE (no encoder and decoder)")
    return parts() if callable(parts) else parts


@torch.no_grad()
def elbo(
    model: Any,
    x: torch.Tensor,
    eps: torch.Tensor | None = None,
    *,
    seed: int = 0,
    analytic_kl: bool = True,
) -> torch.Tensor:
    """The ELBO per sample in nats, from one reparameterised sample with noise `eps`
    [n, latent_dim] (drawn from `seed` when not given). With `analytic_kl=False` the KL is
    the Monte Carlo estimate log q(z|x) - log p(z) at that sample (what `iwae_bound` with
    k = 1 computes)."""
    parts = _parts(model)
    x = _as_batch(x, parts)
    if eps is None:
        gen = torch.Generator().manual_seed(seed)
        eps = torch.randn(len(x), parts.arch["latent_dim"], generator=gen)
    with _eval(parts.enc, parts.dec):
        if analytic_kl:
            rec, kl = elbo_terms(parts, x, eps)
            return (rec - kl).cpu()
    return iwae_bound(parts, x, 1, eps=eps.unsqueeze(0))


@torch.no_grad()
def iwae_bound(
    model: Any,
    x: torch.Tensor,
    k: int,
    *,
    seed: int = 0,
    eps: torch.Tensor | None = None,
    chunk: int = 256,
) -> torch.Tensor:
    """The importance-weighted lower bound on log p(x) per sample (Burda et al. 2016), nats.

    log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) with z_i ~ q(z|x). k = 1 is the single-sample
    ELBO estimate (Monte Carlo KL); the bound rises (weakly, in expectation) with k towards
    log p(x). `eps` [k, n, latent_dim] fixes the noise; otherwise it is drawn from `seed`,
    `chunk` importance samples at a time. `model` is a `VAE`, a loaded VAE or `Parts`.
    """
    parts = _parts(model)
    x = _as_batch(x, parts)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise DataError(f"k must be a positive integer, got {k!r}")
    n, latent = len(x), parts.arch["latent_dim"]
    gen = torch.Generator().manual_seed(seed)
    weights = []
    with _eval(parts.enc, parts.dec):
        device = next(parts.enc.parameters()).device
        x = x.to(device)
        mu, logvar = parts.enc(x)
        std = torch.exp(0.5 * logvar)
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            if eps is not None:
                e = eps[start : start + m].to(mu)
            else:
                e = torch.randn(m, n, latent, generator=gen).to(mu)
            z = mu + std * e  # [m, n, latent]
            out = parts.dec(z.reshape(m * n, latent))
            log_px = parts.log_px(out, x.repeat(m, *([1] * (x.dim() - 1))), parts.dec).view(m, n)
            log_pz = (-0.5 * z.square() - 0.5 * LOG_2PI).sum(2)
            log_qz = (-0.5 * e.square() - 0.5 * logvar - 0.5 * LOG_2PI).sum(2)
            weights.append(log_px + log_pz - log_qz)
    log_w = torch.cat(weights, 0).double()
    return (torch.logsumexp(log_w, 0) - math.log(k)).float().cpu()


def _as_batch(x: Any, parts: Parts) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float32)
    shape = list(parts.arch["shape"])
    if x.dim() == len(shape):
        x = x.unsqueeze(0)
    if list(x.shape[1:]) != shape:
        raise DataError(f"x must have shape [n, {', '.join(map(str, shape))}], got {list(x.shape)}")
    return x


class _eval:
    """Networks in eval mode inside the block, restored after."""

    def __init__(self, *nets: nn.Module) -> None:
        self.nets = nets

    def __enter__(self) -> None:
        self.modes = [net.training for net in self.nets]
        for net in self.nets:
            net.eval()

    def __exit__(self, *exc: Any) -> None:
        for net, mode in zip(self.nets, self.modes, strict=True):
            net.train(mode)


# ---------------------------------------------------------------------------- the engine model
def architecture(model_cfg: Any, shape: Sequence[int]) -> dict[str, Any]:
    """The `architecture` entry of model.json from the config's model section."""
    return {
        "latent_dim": int(model_cfg.latent_dim),
        "widths": [int(w) for w in model_cfg.widths],
        "activation": model_cfg.activation,
        "likelihood": model_cfg.likelihood,
        "decoder_std": float(model_cfg.decoder_std),
        "shape": [int(s) for s in shape],
    }


def check_config(cfg: Any) -> None:
    """ConfigError for settings the VAE cannot use (checked by the builder)."""
    m = cfg.model
    if not m.widths or len(m.widths) > MAX_LAYERS or not all(0 < w <= MAX_WIDTH for w in m.widths):
        raise ConfigError(
            f"model.widths = {m.widths!r} must list 1..{MAX_LAYERS} hidden widths in 1..{MAX_WIDTH}"
        )
    if m.activation not in ACTIVATIONS:
        raise ConfigError(
            f"model.activation = {m.activation!r} is not allowed; choose one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    if cfg.train.ema > 0:
        raise ConfigError("train.ema must be 0 for model.family = vae (it keeps no average)")


def build(cfg) -> tuple[VAE, Any]:
    """The VAE and its batch provider for a config (the registry builder of family `vae`)."""
    from gankit.data.source import TensorBatches, load_dataset

    check_config(cfg)
    dataset = load_dataset(cfg.data)
    return VAE(cfg, dataset), TensorBatches(dataset, cfg.train.batch_size, cfg.train.seed)


class VAE(GenerativeModel):
    """Encoder `enc` and decoder `dec`, one optimizer `vae`, the ELBO as the step."""

    ema_network = None  # no weight average: the bound needs the encoder and decoder as trained

    def __init__(self, cfg, dataset) -> None:
        super().__init__()
        self.cfg, self.dataset = cfg, dataset
        self.arch = architecture(cfg.model, dataset.shape)
        enc, dec = build_networks(self.arch)
        self.networks = {"enc": enc, "dec": dec}
        self.latent_dim, self.batch_size = cfg.model.latent_dim, cfg.train.batch_size
        self.warmup, self.dequantize = cfg.model.kl_warmup_steps, cfg.model.dequantize
        self.data_range = dataset.spec()["range"]
        self.steps = 0  # optimisation steps taken: the KL warm-up schedule reads it
        self.noise = torch.Generator().manual_seed(cfg.train.seed + 1)
        self.fixed_noise = torch.randn(
            PREVIEW_SAMPLES,
            self.latent_dim,
            generator=torch.Generator().manual_seed(cfg.train.seed + 2),
        )

    def parts(self, live: bool = False) -> Parts:
        nets = self.live if live else self.networks
        return Parts(nets["enc"], nets["dec"], self.arch, self.data_range)

    # --- training -------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        from gankit.models.gan import make_optimizer

        t = self.cfg.train
        params = [p for net in self.networks.values() for p in net.parameters()]
        return {"vae": make_optimizer(t.optimizer, params, t.lr_g, t.betas, t.momentum)}

    def beta(self) -> float:
        """The KL weight of the current step: linear warm-up to 1 over `kl_warmup_steps`."""
        if self.warmup <= 0:
            return 1.0
        return min(1.0, (self.steps + 1) / self.warmup)

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """One gradient step on the negative ELBO (KL weighted by the warm-up's beta)."""
        x = batches.next().x
        if self.dequantize > 0:
            u = torch.rand(self.batch_size, *x.shape[1:], generator=self.noise)
            x = x + self.dequantize * batches.local(u)
        eps = batches.local(torch.randn(self.batch_size, self.latent_dim, generator=self.noise))
        beta = self.beta()
        with self.autocast():
            rec, kl = elbo_terms(self.parts(live=True), x, eps, self.live["enc"], self.live["dec"])
            loss = -(rec - beta * kl).mean()
        params = [p for net in self.networks.values() for p in net.parameters()]
        update(loss, optimizers["vae"], params, self.cfg.train.grad_clip)
        self.steps += 1
        rec_mean, kl_mean = float(rec.detach().mean()), float(kl.detach().mean())
        return {
            "loss_vae": float(loss.detach()),
            "elbo": rec_mean - kl_mean,
            "reconstruction": rec_mean,
            "kl": kl_mean,
            "beta": beta,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        self.steps = int(state["steps"])

    # --- sampling and saving -----------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder means for latent codes z, shaped like the data."""
        dec = self.networks["dec"]
        with _eval(dec):
            out = dec(z.to(self.device)).float()
        return self.parts().mean(out).cpu().view(len(z), *self.arch["shape"])

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior means mu(x)."""
        x = _as_batch(x, self.parts()).to(self.device)
        with _eval(self.networks["enc"]):
            return self.networks["enc"](x)[0].float().cpu()

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """Decoder means of n codes z ~ N(0, I) (seeded)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.decode(torch.randn(n, self.latent_dim, generator=gen))

    def preview(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.decode(self.fixed_noise)
        if self.dataset.is_image:
            return out.clamp(-1, 1), None
        return out, self.dataset.x[:2000]

    def spec(self) -> dict[str, Any]:
        return encoder_model_spec(self, VAE_KIND, dequantize=self.dequantize)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        weights = {f"enc.{k}": v for k, v in self.networks["enc"].state_dict().items()}
        weights.update({f"dec.{k}": v for k, v in self.networks["dec"].state_dict().items()})
        return weights, self.spec()


# ------------------------------------------------------------------------------------ loading
class LoadedVAE:
    """A trained VAE read from its model directory: sample, encode, decode, bounds."""

    def __init__(self, enc: Encoder, dec: Decoder, spec: dict[str, Any], device: Any = "cpu"):
        self.device = torch.device(device)
        self.enc, self.dec = enc.to(self.device).eval(), dec.to(self.device).eval()
        self.spec = spec
        self.arch = spec["architecture"]

    @property
    def latent_dim(self) -> int:
        return int(self.arch["latent_dim"])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.arch["shape"])

    num_classes = None  # not class-conditional

    def parts(self) -> Parts:
        return Parts(self.enc, self.dec, self.arch, self.spec["data"].get("range"))

    def sample_latent(
        self, n: int, seed: int | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """n codes z ~ N(0, I); with `truncation` t, values beyond ±t are redrawn."""
        from gankit.generator import normal_latent

        return normal_latent(n, self.latent_dim, seed, truncation)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Decoder means [n, *shape] for codes z [n, latent_dim]."""
        from gankit.generator import DECODE_BATCH, _check_count

        z = torch.as_tensor(z, dtype=torch.float32)
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise DataError(f"z must have shape [n, {self.latent_dim}], got {list(z.shape)}")
        if labels is not None:
            raise DataError("a VAE is not class-conditional; do not pass labels")
        _check_count(z.shape[0], math.prod(self.output_shape))
        parts = self.parts()
        out = [parts.mean(self.dec(c.to(self.device)).float()).cpu() for c in z.split(DECODE_BATCH)]
        return torch.cat(out).view(len(z), *self.output_shape)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, *, variance: bool = False) -> Any:
        """Posterior means mu(x) [n, latent_dim] (and log-variances with `variance=True`)."""
        x = _as_batch(x, self.parts()).to(self.device)
        mu, logvar = self.enc(x)
        return (mu.cpu(), logvar.cpu()) if variance else mu.cpu()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """decode(encode(x)): the decoder mean at the posterior mean."""
        return self.decode(self.encode(x))

    @property
    def is_image(self) -> bool:
        return len(self.output_shape) == 3

    def sample(
        self,
        n: int,
        seed: int | None = None,
        truncation: float | None = None,
        labels: Any = None,
        rejection: bool = False,
        **_: Any,
    ) -> torch.Tensor:
        """n samples (decoder means of z ~ N(0, I)), [n, *shape], reproducible for a seed.

        Takes the keywords of `Generator.sample` so `gankit sample` drives both; a VAE has no
        labels and no discriminator to reject with."""
        if rejection:
            self.rejection_sampler()
        return self.decode(self.sample_latent(n, seed, truncation), labels)

    def interpolate(self, steps: int = 10, seed: int | None = None, label: Any = None):
        """Decoder means along the straight line between two random latent codes."""
        if label is not None:
            raise DataError("a VAE is not class-conditional; do not pass labels")
        ends = self.sample_latent(2, seed)
        weights = torch.linspace(0, 1, steps)[:, None]
        return self.decode((1 - weights) * ends[0] + weights * ends[1])

    def iwae_bound(self, x: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
        return iwae_bound(self, x, k, seed=seed)

    def rejection_sampler(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError("a VAE has no discriminator: sample it without rejection")


class DecoderMean(nn.Module):
    """z -> the decoder's mean shaped like the data: what ONNX export and ONNX serving run."""

    def __init__(self, vae: LoadedVAE) -> None:
        super().__init__()
        self.dec, self.parts, self.shape = vae.dec, vae.parts(), vae.output_shape

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.parts.mean(self.dec(z)).reshape(z.shape[0], *self.shape)


def export_vae(
    model_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    quantize: bool = False,
    prune: float = 0.0,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export a VAE's decoder (z -> decoder mean) to ONNX, checked for parity, and record it in
    model.json as generators do (`gankit export`, `gankit serve --runtime onnx`)."""
    from pathlib import Path

    from gankit import export as ex
    from gankit.modeldir import verify_model_dir, write_spec

    if prune:
        raise ConfigError("--prune is not available for a VAE (its encoder shares the file)")
    src = Path(model_dir)
    spec = verify_model_dir(src)
    dst = Path(out) if out is not None else src
    if dst != src:
        spec = ex._write_copy(src, dst, spec, None, 0.0)
    vae = load_vae(dst)
    module = DecoderMean(vae).eval()
    start = time.perf_counter()
    path = ex.export_onnx(module, vae.latent_dim, dst / ex.ONNX_FILE, exporter)
    report: dict[str, Any] = {
        "model_dir": str(dst),
        "export_s": round(time.perf_counter() - start, 2),
    }
    error = ex._checked_parity(module, path, vae.latent_dim)
    spec["onnx"] = ex._entry(path, exporter, error)
    report.update(onnx=str(path), onnx_bytes=path.stat().st_size, parity_max_abs=error)
    if quantize:
        int8 = ex.quantize_int8(path, dst / ex.INT8_FILE)
        quantized = ex.parity(module, int8, vae.latent_dim)
        spec["onnx_int8"] = ex._entry(int8, "onnxruntime.quantize_dynamic(QInt8)", quantized)
        report.update(onnx_int8=str(int8), int8_max_abs=quantized)
    write_spec(dst, spec)  # re-sealed: spec_sha256 covers the new entries
    return report


def check_vae_spec(path: Any, spec: dict[str, Any]) -> None:
    """CheckpointError unless model.json's architecture fits the weights, allocating nothing."""
    where = f"{path}/model.json"
    arch = spec.get("architecture")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{where}: 'architecture' must be an object")
    check_bounds(where, arch, {"latent_dim": (1, MAX_LATENT_DIM)})
    widths, shape = arch.get("widths"), arch.get("shape")
    if not isinstance(widths, list) or not 1 <= len(widths) <= MAX_LAYERS:
        raise CheckpointError(f"{where}: 'widths' must list 1..{MAX_LAYERS} widths")
    bounds = dict.fromkeys(range(len(widths)), (1, MAX_WIDTH))
    check_bounds(f"{where} architecture.widths", dict(enumerate(widths)), bounds)
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 4
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        or math.prod(shape) > MAX_VALUES
    ):
        raise CheckpointError(f"{where}: architecture.shape is {shape!r}, expected 1-4 sizes")
    if arch.get("likelihood") not in LIKELIHOODS or arch.get("activation") not in ACTIVATIONS:
        raise CheckpointError(
            f"{where}: likelihood {arch.get('likelihood')!r} / activation "
            f"{arch.get('activation')!r} unknown; expected one of {LIKELIHOODS} / "
            f"{list(ACTIVATIONS)}"
        )
    std = arch.get("decoder_std")
    if isinstance(std, bool) or not isinstance(std, int | float) or not math.isfinite(std):
        raise CheckpointError(f"{where}: 'decoder_std' is {std!r}, expected a number")
    if spec.get("latent_dim") != arch["latent_dim"]:
        raise CheckpointError(f"{where}: latent_dim differs from architecture.latent_dim")
    shapes = weight_shapes(path)

    def probe(enc: nn.Module) -> None:
        mu, _ = enc(torch.empty(2, *shape, device="meta"))
        if list(mu.shape) != [2, arch["latent_dim"]]:
            raise CheckpointError(f"{where}: the encoder gives codes of shape {list(mu.shape)}")

    check_module_fits(
        lambda: build_networks(arch)[0], shapes, prefix="enc.", where=where, probe=probe
    )
    check_module_fits(lambda: build_networks(arch)[1], shapes, prefix="dec.", where=where)


def load_vae(path: str | os.PathLike, device: Any = "cpu") -> LoadedVAE:
    """Load a VAE model directory (hashes checked, spec checked against the weights' shapes
    before anything is built, no pickle)."""
    tensors, spec = read_model_dir(path, (VAE_KIND,), check=check_vae_spec)
    enc, dec = build_networks(spec["architecture"])
    try:
        enc.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("enc.")})
        dec.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("dec.")})
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model.json ({exc})") from exc
    return LoadedVAE(enc, dec, spec, device)


def encoder_model_spec(model: Any, kind: str, **preprocessing: Any) -> dict[str, Any]:
    """model.json of the encoder families (VAE, VAE-GAN, BiGAN): kind, networks, latent size,
    data and its scaling (plus `preprocessing` extras such as the dequantisation noise)."""
    from gankit import __version__
    from gankit.config import to_dict

    image = model.dataset.is_image
    return {
        "kind": kind,
        "architecture": model.arch,
        "latent_dim": model.latent_dim,
        "num_classes": None,
        "data": model.dataset.spec(),
        "preprocessing": {
            "range": [-1, 1] if image else None,
            "description": "pixels scaled linearly to [-1, 1]" if image else "raw values",
            **preprocessing,
        },
        "config": to_dict(model.cfg),
        "gankit_version": __version__,
    }


def check_loss_only_objective(cfg: Any, why: str = "") -> None:
    """Families whose discriminator takes only `objective.loss` (no penalties, clipping,
    unrolling or augmentation) and keep no EMA: a ConfigError naming what to remove."""
    o, family = cfg.objective, cfg.model.family
    extras = {
        "gradient_penalty": o.gradient_penalty,
        "r1": o.r1,
        "weight_clip": o.weight_clip,
        "unroll_steps": o.unroll_steps,
        "augment": o.augment,
    }
    used = [f"objective.{k}" for k, v in extras.items() if v]
    if used:
        raise ConfigError(
            f"{', '.join(used)}: not available for model.family = {family!r} ({why}only "
            "objective.loss applies); remove them"
        )
    if cfg.train.ema > 0:
        raise ConfigError(f"train.ema must be 0 for model.family = {family!r}")
