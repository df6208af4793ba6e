"""BiGAN (Donahue et al. 2017, "Adversarial Feature Learning") and ALI (Dumoulin et al. 2017,
"Adversarially Learned Inference") as a model step.

An encoder `enc` maps x to z, a generator `g` maps z to x, and one discriminator `d` judges
joint pairs: (x, E(x)) with x from the data against (G(z), z) with z ~ N(0, I). At the optimum
of the game E and G invert each other. D minimises the configured loss with the encoder's pairs
as "real"; G and E minimise the same loss with the roles swapped (the labels inverted, the
non-saturating form of both papers), through one optimizer `ge`.

The encoder is Gaussian, q(z|x) = N(mu(x), diag(exp(logvar(x)))) sampled by reparameterisation
(ALI, `stochastic_encoder: true`), or deterministic, z = mu(x) (BiGAN). Networks are MLPs (the
VAE's encoder, an MLP generator with a tanh output for images, an MLP D on the concatenation of
the flattened x and z, with dropout as in both papers). A trained model is a directory of kind
`bigan`; `load_bigan` reads it as a sampler and an encoder (the interface of a loaded VAE).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gankit.engine.model import Batches, GenerativeModel, update
from gankit.errors import CheckpointError, ConfigError
from gankit.modeldir import check_bounds, check_module_fits, read_model_dir, weight_shapes
from gankit.models.vae import (
    LOGVAR_RANGE,
    MAX_LATENT_DIM,
    MAX_LAYERS,
    MAX_VALUES,
    MAX_WIDTH,
    Encoder,
    LoadedVAE,
    Parts,
    _as_batch,
    _eval,
    check_loss_only_objective,
    encoder_model_spec,
)
from gankit.nets.layers import ACTIVATIONS
from gankit.nets.mlp import mlp
from gankit.objectives import LOSSES, Loss
from gankit.registry import BIGAN_KIND

PREVIEW_SAMPLES = 64
WIDTH_KEYS = ("g_widths", "e_widths", "d_widths")


# ---------------------------------------------------------------------------------- networks
class Generator(nn.Module):
    """z -> MLP -> x flattened (tanh for images, whose pixels lie in [-1, 1])."""

    def __init__(
        self,
        latent_dim: int,
        widths: Sequence[int],
        out_shape: Sequence[int],
        act: str,
        squash: bool,
    ):
        super().__init__()
        self.net = mlp(latent_dim, widths, math.prod(out_shape), act)
        self.squash = squash

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        return torch.tanh(out) if self.squash else out


class JointDiscriminator(nn.Module):
    """(x, z) -> one logit: an MLP (leaky ReLU, dropout) on [flatten(x), z]."""

    def __init__(
        self, in_shape: Sequence[int], latent_dim: int, widths: Sequence[int], dropout: float
    ):
        super().__init__()
        self.net = mlp(math.prod(in_shape) + latent_dim, widths, 1, "leaky_relu", dropout)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x.reshape(x.shape[0], -1), z.to(x.dtype)], 1))


def build_networks(arch: dict[str, Any]) -> tuple[Encoder, Generator, JointDiscriminator]:
    """Encoder, generator and joint discriminator from the `architecture` of a spec."""
    shape, latent, act = list(arch["shape"]), int(arch["latent_dim"]), arch["activation"]
    enc = Encoder(shape, arch["e_widths"], latent, act)
    g = Generator(latent, arch["g_widths"], shape, act, arch["output"] == "tanh")
    d = JointDiscriminator(shape, latent, arch["d_widths"], float(arch["d_dropout"]))
    return enc, g, d


# ----------------------------------------------------------------------------- the objective
def bigan_losses(
    loss: Loss,
    d: nn.Module,
    x: torch.Tensor,
    z_enc: torch.Tensor,
    x_gen: torch.Tensor,
    z: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(D's loss, the G+E loss, D's scores on encoder pairs, on generator pairs).

    D's loss is `loss.d(D(x, E(x)), D(G(z), z))`: encoder pairs are "real". G and E play the
    same loss with the roles swapped, `loss.d(D(G(z), z), D(x, E(x)))`: the inverted labels
    (for the minimax loss: -log D(G(z), z) - log(1 - D(x, E(x)))). Gradients flow to every
    argument; the step detaches what D's update must not move."""
    enc_scores, gen_scores = d(x, z_enc), d(x_gen, z)
    return loss.d(enc_scores, gen_scores), loss.d(gen_scores, enc_scores), enc_scores, gen_scores


def reconstruction_loss(g: nn.Module, x: torch.Tensor, z_enc: torch.Tensor) -> torch.Tensor:
    """mean_i ||G(E(x_i)) - x_i||^2: ALICE's explicit cycle-consistency term (Li et al. 2017),
    an option beside the adversarial loss (`model.reconstruction_weight`, 0 in BiGAN/ALI)."""
    diff = g(z_enc).float() - x.reshape(x.shape[0], -1).float()
    return diff.square().sum(1).mean()


def encode_sample(
    enc: nn.Module, x: torch.Tensor, eps: torch.Tensor, stochastic: bool
) -> torch.Tensor:
    """E(x): mu + exp(logvar / 2) * eps (ALI) or mu (BiGAN)."""
    mu, logvar = enc(x)
    return mu + torch.exp(0.5 * logvar) * eps.to(mu) if stochastic else mu


# ---------------------------------------------------------------------------- the engine model
def architecture(model_cfg: Any, shape: Sequence[int], image: bool) -> dict[str, Any]:
    """The `architecture` entry of model.json from the config's model section."""
    return {
        "latent_dim": int(model_cfg.latent_dim),
        **{key: [int(w) for w in getattr(model_cfg, key)] for key in WIDTH_KEYS},
        "activation": model_cfg.activation,
        "d_dropout": float(model_cfg.d_dropout),
        "stochastic_encoder": bool(model_cfg.stochastic_encoder),
        "output": "tanh" if image else "none",
        "shape": [int(s) for s in shape],
    }


def check_config(cfg: Any) -> None:
    """ConfigError for settings the BiGAN cannot use (checked by the builder)."""
    m = cfg.model
    for key in WIDTH_KEYS:
        widths = getattr(m, key)
        if not widths or len(widths) > MAX_LAYERS or not all(0 < w <= MAX_WIDTH for w in widths):
            raise ConfigError(
                f"model.{key} = {widths!r} must list 1..{MAX_LAYERS} hidden widths in "
                f"1..{MAX_WIDTH}"
            )
    if m.activation not in ACTIVATIONS:
        raise ConfigError(
            f"model.activation = {m.activation!r} is not allowed; choose one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    if not 0 <= m.reconstruction_weight < math.inf:
        raise ConfigError(
            f"model.reconstruction_weight = {m.reconstruction_weight!r} must be a number >= 0"
        )
    check_loss_only_objective(cfg, "its D judges (x, z) pairs; ")


def build(cfg) -> tuple[BiGAN, Any]:
    """The BiGAN and its batch provider (the registry builder of family `bigan`)."""
    from gankit.data.source import TensorBatches, load_dataset

    check_config(cfg)
    dataset = load_dataset(cfg.data)
    return BiGAN(cfg, dataset), TensorBatches(dataset, cfg.train.batch_size, cfg.train.seed)


class BiGAN(GenerativeModel):
    """Encoder `enc`, generator `g`, joint discriminator `d`; optimizers `d` and `ge`."""

    ema_network = None  # the encoder and generator are a pair: no average of one alone

    def __init__(self, cfg, dataset) -> None:
        super().__init__()
        self.cfg, self.dataset = cfg, dataset
        self.arch = architecture(cfg.model, dataset.shape, dataset.is_image)
        enc, g, d = build_networks(self.arch)
        self.networks = {"enc": enc, "g": g, "d": d}
        self.loss = LOSSES[cfg.objective.loss]
        self.latent_dim, self.batch_size = int(cfg.model.latent_dim), cfg.train.batch_size
        self.stochastic = bool(cfg.model.stochastic_encoder)
        self.rec_weight = float(cfg.model.reconstruction_weight)
        self.data_range = dataset.spec()["range"]
        self.noise = torch.Generator().manual_seed(cfg.train.seed + 1)
        self.fixed_noise = torch.randn(
            PREVIEW_SAMPLES,
            self.latent_dim,
            generator=torch.Generator().manual_seed(cfg.train.seed + 2),
        )

    # --- training -------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        from gankit.models.gan import make_optimizer

        t = self.cfg.train
        ge = [p for name in ("g", "enc") for p in self.networks[name].parameters()]
        d = self.networks["d"].parameters()
        return {
            "d": make_optimizer(t.optimizer, d, t.lr_d, t.betas, t.momentum),
            "ge": make_optimizer(t.optimizer, ge, t.lr_g, t.betas, t.momentum),
        }

    def _noise(self, batches: Batches) -> torch.Tensor:
        return batches.local(torch.randn(self.batch_size, self.latent_dim, generator=self.noise))

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """`train.d_steps` D updates on fresh pairs, then one joint G and E update."""
        enc, g, d = self.live["enc"], self.live["g"], self.live["d"]
        clip = self.cfg.train.grad_clip
        for _ in range(self.cfg.train.d_steps):
            x = batches.next().x
            z, eps = self._noise(batches), self._noise(batches)
            with torch.no_grad(), self.autocast():
                z_enc, x_gen = encode_sample(enc, x, eps, self.stochastic), g(z)
            with self.autocast():
                loss_d, _, enc_s, gen_s = bigan_losses(self.loss, d, x, z_enc, x_gen, z)
            update(loss_d, optimizers["d"], self.networks["d"].parameters(), clip)
        with self.autocast():  # the last D step's pairs (with gradients), scored by the new D
            z_enc, x_gen = encode_sample(enc, x, eps, self.stochastic), g(z)
            _, loss_ge, _, _ = bigan_losses(self.loss, d, x, z_enc, x_gen, z)
            if self.rec_weight > 0:
                rec = reconstruction_loss(g, x, z_enc)
                loss_ge = loss_ge + self.rec_weight * rec
        params = [p for name in ("g", "enc") for p in self.networks[name].parameters()]
        update(loss_ge, optimizers["ge"], params, clip)
        stats = {
            "loss_d": float(loss_d.detach()),
            "loss_ge": float(loss_ge.detach()),
            "d_real": float(enc_s.detach().float().mean()),
            "d_fake": float(gen_s.detach().float().mean()),
        }
        if self.rec_weight > 0:
            stats["reconstruction"] = float(rec.detach())
        if self.loss.sign_separates:  # the watchdog's "D wins every batch" signal
            stats["d_perfect"] = float(bool((enc_s > 0).all() and (gen_s < 0).all()))
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])

    # --- sampling and saving -----------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) shaped like the data."""
        g = self.networks["g"]
        with _eval(g):
            out = g(z.to(self.device)).float().cpu()
        return out.view(len(z), *self.arch["shape"])

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's mean mu(x) (its deterministic code)."""
        x = _as_batch(x, _parts_view(self.networks["enc"], self.networks["g"], self.arch, None))
        with _eval(self.networks["enc"]):
            return self.networks["enc"](x.to(self.device))[0].float().cpu()

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """G(z) for n codes z ~ N(0, I) (seeded)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.decode(torch.randn(n, self.latent_dim, generator=gen))

    def preview(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.decode(self.fixed_noise)
        return (out, None) if self.dataset.is_image else (out, self.dataset.x[:2000])

    def spec(self) -> dict[str, Any]:
        return encoder_model_spec(self, BIGAN_KIND)

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The encoder and generator (D judges pairs and is kept only in the training state)."""
        weights = {f"enc.{k}": v for k, v in self.networks["enc"].state_dict().items()}
        weights.update({f"g.{k}": v for k, v in self.networks["g"].state_dict().items()})
        return weights, self.spec()


# ------------------------------------------------------------------------------------ loading
def _parts_view(enc: nn.Module, g: nn.Module, arch: dict[str, Any], data_range: Any) -> Parts:
    """The VAE's `Parts` over E and G: its shape checks and its "mean" (G's output, clamped to
    the data range) are what a loaded BiGAN needs; it has no likelihood (no bound is offered)."""
    view = {**arch, "likelihood": "gaussian", "decoder_std": 1.0}
    return Parts(enc, g, view, data_range)


class LoadedBiGAN(LoadedVAE):
    """A trained BiGAN read from its model directory: `sample`, `decode` (G), `encode` (E),
    `reconstruct` (G(E(x))), `interpolate` — what `gankit sample/encode/report` and the service
    call on a loaded VAE."""

    def parts(self) -> Parts:
        return _parts_view(self.enc, self.dec, self.arch, self.spec["data"].get("range"))

    @torch.no_grad()
    def encode(self, x: torch.Tensor, *, variance: bool = False) -> Any:
        """Codes mu(x) [n, latent_dim] (and log-variances with `variance=True`; a deterministic
        BiGAN encoder reports the floor -30, a point mass)."""
        x = _as_batch(x, self.parts()).to(self.device)
        mu, logvar = self.enc(x)
        if not self.arch["stochastic_encoder"]:
            logvar = torch.full_like(mu, LOGVAR_RANGE[0])
        return (mu.cpu(), logvar.cpu()) if variance else mu.cpu()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """G(E(x)) with E's mean code."""
        return self.decode(self.encode(x))

    def iwae_bound(self, x: torch.Tensor, k: int, seed: int = 0) -> torch.Tensor:
        raise ConfigError("a BiGAN has no likelihood: there is no IWAE bound to compute")

    def rejection_sampler(self, *args: Any, **kwargs: Any) -> Any:
        raise ConfigError(
            "a BiGAN's discriminator judges (x, z) pairs and is not saved: sample it without "
            "rejection"
        )


def check_bigan_spec(path: Any, spec: dict[str, Any]) -> None:
    """CheckpointError unless model.json's architecture fits the weights, allocating nothing."""
    where = f"{path}/model.json"
    arch = spec.get("architecture")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{where}: 'architecture' must be an object")
    check_bounds(where, arch, {"latent_dim": (1, MAX_LATENT_DIM)})
    for key in WIDTH_KEYS:
        widths = arch.get(key)
        if not isinstance(widths, list) or not 1 <= len(widths) <= MAX_LAYERS:
            raise CheckpointError(f"{where}: {key!r} must list 1..{MAX_LAYERS} widths")
        bounds = dict.fromkeys(range(len(widths)), (1, MAX_WIDTH))
        check_bounds(f"{where} architecture.{key}", dict(enumerate(widths)), bounds)
    shape = arch.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 4
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)
        or math.prod(shape) > MAX_VALUES
    ):
        raise CheckpointError(f"{where}: architecture.shape is {shape!r}, expected 1-4 sizes")
    if arch.get("activation") not in ACTIVATIONS or arch.get("output") not in ("tanh", "none"):
        raise CheckpointError(
            f"{where}: activation {arch.get('activation')!r} / output {arch.get('output')!r} "
            f"unknown; expected one of {list(ACTIVATIONS)} / ['tanh', 'none']"
        )
    if not isinstance(arch.get("stochastic_encoder"), bool):
        raise CheckpointError(f"{where}: 'stochastic_encoder' must be true or false")
    if spec.get("latent_dim") != arch["latent_dim"]:
        raise CheckpointError(f"{where}: latent_dim differs from architecture.latent_dim")
    shapes = weight_shapes(path)
    arch = {**arch, "d_dropout": 0.0}  # D is not saved; its dropout is irrelevant here

    def probe(enc: nn.Module) -> None:
        mu, _ = enc(torch.empty(2, *shape, device="meta"))
        if list(mu.shape) != [2, arch["latent_dim"]]:
            raise CheckpointError(f"{where}: the encoder gives codes of shape {list(mu.shape)}")

    nets = lambda i: lambda: build_networks(arch)[i]  # noqa: E731
    check_module_fits(nets(0), shapes, prefix="enc.", where=where, probe=probe)
    check_module_fits(nets(1), shapes, prefix="g.", where=where)


def load_bigan(path: str | os.PathLike, device: Any = "cpu") -> LoadedBiGAN:
    """Load a BiGAN model directory (hashes checked, spec checked against the weights' shapes
    before anything is built, no pickle)."""
    tensors, spec = read_model_dir(path, (BIGAN_KIND,), check=check_bigan_spec)
    enc, g, _ = build_networks({**spec["architecture"], "d_dropout": 0.0})
    try:
        enc.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("enc.")})
        g.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("g.")})
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model.json ({exc})") from exc
    return LoadedBiGAN(enc, g, spec, device)
