"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

The VAE's encoder q(z|x) and decoder (`gankit.models.vae`), the decoder doubling as the
generator, and a discriminator D whose hidden layer l gives features Dis_l. With x~ = Dec(z),
z ~ q(z|x), and x_p = Dec(z_p), z_p ~ N(0, I):

* L_prior = KL(q(z|x) || N(0, I));
* L_llike = -log N(Dis_l(x) | Dis_l(x~), sigma^2 I) = ||Dis_l(x) - Dis_l(x~)||^2 / (2 sigma^2)
  (+ a constant): the reconstruction error in D's feature space, a Gaussian observation model;
* L_GAN: D tells x from both x~ and x_p (the configured loss, non-saturating by default).

D minimises its GAN loss only (the paper does not backpropagate L_llike into D). The encoder
minimises L_prior + L_llike; the decoder gamma * L_llike + its GAN loss on x~ and x_p (the
paper's gamma weighs content against style). Both share one optimizer `vae`: the decoder's
gradient of L_llike is scaled by gamma and the encoder's is not (`scale_grad` around the
decoder), which is the paper's two updates from one backward pass.

A trained model is a directory of kind `vae` (the encoder and decoder; D stays in the training
state), so it loads, samples, encodes, decodes, serves and exports exactly like a VAE. Its
`vaegan` entry records the training objective; its Gaussian `decoder_std` of 1 only makes the
directory a valid VAE: the model was not trained on a pixel likelihood, so its IWAE bound is no
measure of it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from gankit.engine.model import Batches, GenerativeModel, update
from gankit.errors import ConfigError
from gankit.models.vae import (
    MAX_LAYERS,
    MAX_WIDTH,
    Parts,
    _eval,
    build_networks,
    check_loss_only_objective,
    encoder_model_spec,
    gaussian_kl,
)
from gankit.nets.layers import ACTIVATIONS
from gankit.objectives import LOSSES, Loss
from gankit.registry import VAE_KIND

PREVIEW_SAMPLES = 64
DECODER_STD = 1.0  # what model.json records so the directory is a valid Gaussian VAE


# ---------------------------------------------------------------------------------- networks
class FeatureDiscriminator(nn.Module):
    """x (flattened) -> hidden layers (leaky ReLU, dropout) -> one logit; also returns the
    activations of hidden layer `feature_layer` (1-based), the space L_llike is measured in."""

    def __init__(
        self, in_shape: Sequence[int], widths: Sequence[int], dropout: float, feature_layer: int
    ):
        super().__init__()
        blocks, width = [], math.prod(in_shape)
        for w in widths:
            layers: list[nn.Module] = [nn.Linear(width, w), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*layers))
            width = w
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(width, 1)
        self.feature_layer = feature_layer

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.reshape(x.shape[0], -1)
        features = h
        for i, block in enumerate(self.blocks, 1):
            h = block(h)
            if i == self.feature_layer:
                features = h
        return self.head(h), features


# ----------------------------------------------------------------------------- the objective
def scale_grad(t: torch.Tensor, factor: float) -> torch.Tensor:
    """t in the forward pass; its gradient multiplied by `factor` in the backward pass."""
    return t * factor + (t * (1.0 - factor)).detach()


def discriminator_loss(
    loss: Loss, d: nn.Module, x: torch.Tensor, x_rec: torch.Tensor, x_prior: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(D's loss, its scores on x, on the fakes): `loss.d(D(x), D([x~, x_p]))`, fakes detached."""
    real = d(x)[0]
    fake = d(torch.cat([x_rec.detach(), x_prior.detach()]))[0]
    return loss.d(real, fake), real, fake


def feature_nll(
    d: nn.Module, x: torch.Tensor, x_rec: torch.Tensor, feature_std: float
) -> torch.Tensor:
    """L_llike per sample: ||Dis_l(x) - Dis_l(x~)||^2 / (2 sigma^2) (x's features are a target)."""
    target = d(x)[1].detach().float()
    diff = (d(x_rec)[1].float() - target) / feature_std
    return 0.5 * diff.square().sum(1)


def vae_losses(
    loss: Loss,
    enc: nn.Module,
    dec: nn.Module,
    d: nn.Module,
    x: torch.Tensor,
    eps: torch.Tensor,
    x_prior: torch.Tensor,
    gamma: float,
    feature_std: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The encoder and decoder's loss for one batch, with its terms.

    Its gradient is the encoder's grad(L_prior + L_llike) and the decoder's
    grad(gamma L_llike + L_GAN,dec): the code passes the decoder with its gradient scaled by
    1/gamma and the reconstruction leaves it scaled by gamma, so the encoder sees L_llike
    unweighted; the GAN term reaches the decoder only (from a detached code)."""
    mu, logvar = (t.float() for t in enc(x))
    z = mu + torch.exp(0.5 * logvar) * eps.to(mu)
    kl = gaussian_kl(mu, logvar)
    x_rec = scale_grad(dec(scale_grad(z, 1.0 / gamma)), gamma)
    llike = feature_nll(d, x, x_rec, feature_std)
    fakes = torch.cat([dec(z.detach()), x_prior])
    gan = loss.g(d(fakes)[0])
    total = (kl + llike).mean() + gan
    return total, {"kl": kl.mean(), "feature_nll": llike.mean(), "gan": gan}


# ---------------------------------------------------------------------------- the engine model
def architecture(model_cfg: Any, shape: Sequence[int]) -> dict[str, Any]:
    """The VAE `architecture` of model.json (what `load_vae` rebuilds the networks from)."""
    return {
        "latent_dim": int(model_cfg.latent_dim),
        "widths": [int(w) for w in model_cfg.widths],
        "activation": model_cfg.activation,
        "likelihood": "gaussian",
        "decoder_std": DECODER_STD,
        "shape": [int(s) for s in shape],
    }


def check_config(cfg: Any) -> None:
    """ConfigError for settings the VAE-GAN cannot use (checked by the builder)."""
    m = cfg.model
    for key in ("widths", "d_widths"):
        widths = getattr(m, key)
        if not widths or len(widths) > MAX_LAYERS or not all(0 < w <= MAX_WIDTH for w in widths):
            raise ConfigError(
                f"model.{key} = {widths!r} must list 1..{MAX_LAYERS} hidden widths in "
                f"1..{MAX_WIDTH}"
            )
    if not 1 <= m.feature_layer <= len(m.d_widths):
        raise ConfigError(
            f"model.feature_layer = {m.feature_layer} must name a hidden layer of D, "
            f"1..{len(m.d_widths)}"
        )
    for key in ("gamma", "feature_std"):
        if not 0 < getattr(m, key) < math.inf:
            raise ConfigError(f"model.{key} = {getattr(m, key)!r} must be a number > 0")
    if m.activation not in ACTIVATIONS:
        raise ConfigError(
            f"model.activation = {m.activation!r} is not allowed; choose one of "
            f"{', '.join(ACTIVATIONS)}"
        )
    check_loss_only_objective(cfg)


def build(cfg) -> tuple[VAEGAN, Any]:
    """The VAE-GAN and its batch provider (the registry builder of family `vaegan`)."""
    from gankit.data.source import TensorBatches, load_dataset

    check_config(cfg)
    dataset = load_dataset(cfg.data)
    return VAEGAN(cfg, dataset), TensorBatches(dataset, cfg.train.batch_size, cfg.train.seed)


class VAEGAN(GenerativeModel):
    """Encoder `enc`, decoder `dec` (the generator), discriminator `d`; optimizers `vae`, `d`."""

    ema_network = None

    def __init__(self, cfg, dataset) -> None:
        super().__init__()
        m = cfg.model
        self.cfg, self.dataset = cfg, dataset
        self.arch = architecture(m, dataset.shape)
        enc, dec = build_networks(self.arch)
        d = FeatureDiscriminator(dataset.shape, m.d_widths, m.d_dropout, m.feature_layer)
        self.networks = {"enc": enc, "dec": dec, "d": d}
        self.loss = LOSSES[cfg.objective.loss]
        self.latent_dim, self.batch_size = int(m.latent_dim), cfg.train.batch_size
        self.gamma, self.feature_std = float(m.gamma), float(m.feature_std)
        self.data_range = dataset.spec()["range"]
        self.noise = torch.Generator().manual_seed(cfg.train.seed + 1)
        self.fixed_noise = torch.randn(
            PREVIEW_SAMPLES,
            self.latent_dim,
            generator=torch.Generator().manual_seed(cfg.train.seed + 2),
        )

    def parts(self) -> Parts:
        return Parts(self.networks["enc"], self.networks["dec"], self.arch, self.data_range)

    # --- training -------------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        from gankit.models.gan import make_optimizer

        t = self.cfg.train
        vae = [p for name in ("enc", "dec") for p in self.networks[name].parameters()]
        d = self.networks["d"].parameters()
        return {
            "vae": make_optimizer(t.optimizer, vae, t.lr_g, t.betas, t.momentum),
            "d": make_optimizer(t.optimizer, d, t.lr_d, t.betas, t.momentum),
        }

    def _noise(self, batches: Batches) -> torch.Tensor:
        return batches.local(torch.randn(self.batch_size, self.latent_dim, generator=self.noise))

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """One D update on x against x~ and x_p, then one encoder and decoder update."""
        enc, dec, d = self.live["enc"], self.live["dec"], self.live["d"]
        clip = self.cfg.train.grad_clip
        x = batches.next().x
        eps, z_prior = self._noise(batches), self._noise(batches)
        with torch.no_grad(), self.autocast():
            mu, logvar = enc(x)
            x_rec = dec(mu + torch.exp(0.5 * logvar) * eps.to(mu))
        with self.autocast():
            x_prior = dec(z_prior)
            loss_d, real_s, fake_s = discriminator_loss(self.loss, d, x, x_rec, x_prior)
        update(loss_d, optimizers["d"], self.networks["d"].parameters(), clip)
        with self.autocast():
            loss_vae, terms = vae_losses(
                self.loss, enc, dec, d, x, eps, x_prior, self.gamma, self.feature_std
            )
        params = [p for name in ("enc", "dec") for p in self.networks[name].parameters()]
        update(loss_vae, optimizers["vae"], params, clip)
        stats = {
            "loss_d": float(loss_d.detach()),
            "loss_vae": float(loss_vae.detach()),
            **{k: float(v.detach()) for k, v in terms.items()},
            "d_real": float(real_s.detach().float().mean()),
            "d_fake": float(fake_s.detach().float().mean()),
        }
        if self.loss.sign_separates:
            stats["d_perfect"] = float(bool((real_s > 0).all() and (fake_s < 0).all()))
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])

    # --- sampling and saving -----------------------------------------------------------------
    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder outputs for codes z, clamped to the data range, shaped like the data."""
        dec = self.networks["dec"]
        with _eval(dec):
            out = dec(z.to(self.device)).float()
        return self.parts().mean(out).cpu().view(len(z), *self.arch["shape"])

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """Dec(z) for n codes z ~ N(0, I) (seeded)."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        return self.decode(torch.randn(n, self.latent_dim, generator=gen))

    def preview(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.decode(self.fixed_noise)
        return (out, None) if self.dataset.is_image else (out, self.dataset.x[:2000])

    def spec(self) -> dict[str, Any]:
        m = self.cfg.model
        return {
            **encoder_model_spec(self, VAE_KIND, dequantize=0.0),
            "vaegan": {
                "objective": "Larsen et al. 2016: KL + D-feature Gaussian reconstruction + GAN",
                "d_widths": list(m.d_widths),
                "feature_layer": m.feature_layer,
                "feature_std": m.feature_std,
                "gamma": m.gamma,
                "loss": self.cfg.objective.loss,
            },
        }

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The encoder and decoder as a VAE directory (D stays in the training state)."""
        weights = {f"enc.{k}": v for k, v in self.networks["enc"].state_dict().items()}
        weights.update({f"dec.{k}": v for k, v in self.networks["dec"].state_dict().items()})
        return weights, self.spec()
