"""InfoGAN (Chen et al. 2016) as a model step.

The generator's input is z = [categorical slots (K), continuous codes (C), noise]. The
categorical code is the argmax of K Gaussian slots (`gankit.nets.CategoricalLatent`: a uniform
draw of K categories fed to G as a one-hot), the continuous codes are N(0, 1). So the saved
generator is an ordinary `image-generator` fed by Gaussian z — sampling, serving and ONNX export
need nothing new — and `Generator.sample(n, codes=...)` fixes codes by writing them into z.

Q shares D's body (every layer but the score) and adds a small head: K categorical logits and a
Gaussian (mean, log-std) per continuous code. The mutual-information lower bound
L_I = E[log Q(c | G(z, c))] + H(c) (Chen et al. 2016, eq. 5) is maximised by G and Q:
λ_cat × the categorical cross-entropy plus λ_cont × the Gaussian negative log-likelihood is added
to D's loss (Q's head and the shared body learn on detached fakes) and to G's loss.

Options from ClusterGAN (Mukherjee et al. 2019) and the paper's MNIST Q: small-σ noise
(`noise_std`, folded into G's first layer on export), Q's estimate of the noise
(`lambda_noise`), Q on a body of its own (`q_shared: false`), BN in Q's head (`q_batch_norm`),
augmented samples for Q (`q_augment`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gankit.engine.model import Batches, update
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.generator import AUXILIARY_PREFIX, DISCRIMINATOR_PREFIX, GENERATOR_KINDS
from gankit.models.gan import GAN, make_optimizer
from gankit.nets import architecture_spec, build_discriminator, build_generator
from gankit.nets.dcgan import DCGANDiscriminator
from gankit.nets.mlp import MLPDiscriminator
from gankit.objectives import build_objective

Q_PREFIX = AUXILIARY_PREFIX + "q."
LOG_STD_RANGE = (-5.0, 2.0)  # Q's log-std is clamped here so the likelihood cannot blow up


def build(cfg) -> tuple[InfoGAN, Any]:
    """The InfoGAN and its batch provider (registry builder of `infogan`)."""
    from gankit.data.source import TensorBatches, load_dataset

    check_config(cfg)
    dataset = load_dataset(cfg.data)
    if not dataset.is_image and cfg.model.net == "dcgan":
        raise ConfigError(
            f"model.net = 'dcgan' needs images; data {dataset.name!r} is points: use model.net=mlp"
        )
    return InfoGAN(cfg, dataset), TensorBatches(dataset, cfg.train.batch_size, cfg.train.seed)


def check_config(cfg) -> None:
    """ConfigError for code settings InfoGAN cannot train."""
    m = cfg.model
    if m.categorical == 1 or m.categorical < 0 or m.continuous < 0:
        raise ConfigError(
            f"model.categorical = {m.categorical}, model.continuous = {m.continuous}: the "
            "categorical code needs >= 2 categories (or 0 for none), continuous >= 0"
        )
    if m.categorical + m.continuous == 0:
        raise ConfigError("model.categorical and model.continuous are both 0: InfoGAN needs a code")
    if m.noise_dim < 1 or m.q_width < 1 or min(m.lambda_cat, m.lambda_cont, m.lambda_noise) < 0:
        raise ConfigError(
            "model.noise_dim and model.q_width must be >= 1, model.lambda_cat, "
            "model.lambda_cont and model.lambda_noise >= 0"
        )
    if not m.noise_std > 0:
        raise ConfigError(f"model.noise_std = {m.noise_std} must be > 0 (1 = N(0, 1) noise)")
    if not (m.q_std >= 0 and m.instance_noise >= 0):
        raise ConfigError(
            f"model.q_std = {m.q_std}, model.instance_noise = {m.instance_noise}: both must be "
            ">= 0 (0 = learned std, 0 = no instance noise)"
        )
    if m.q_augment:
        from gankit.augment.diffaugment import DiffAugment

        try:
            DiffAugment(m.q_augment)
        except DataError as exc:
            raise ConfigError(f"model.q_augment: {exc}") from exc
    if cfg.objective.unroll_steps > 0:
        raise ConfigError("objective.unroll_steps: not available for model.family = infogan")


def network_spec(model: Any, data_shape: list[int]) -> dict[str, Any]:
    """The architecture of model.json: a plain `dcgan`/`mlp` G and D over z of the full size."""
    arch = {
        "family": model.net,
        "latent_dim": model.categorical + model.continuous + model.noise_dim,
        "latent_categories": model.categorical,
        "g_width": model.g_width,
        "d_width": model.d_width,
        "spectral_norm": model.spectral_norm,
        "init": model.init,
    }
    if model.net == "mlp":
        arch.update(g_depth=model.g_depth, d_depth=model.d_depth, g_batch_norm=True)
    else:
        arch.update(d_batch_norm=model.d_batch_norm)
    return architecture_spec(arch, data_shape)


# --- D's body shared with Q --------------------------------------------------------------------
def body_features(d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """D's last hidden features (everything but the score layer), flattened. A DDP-wrapped D is
    read through its module (InfoGAN under torchrun: tests/engine/test_families_ddp.py)."""
    d = getattr(d, "module", d)
    if isinstance(d, DCGANDiscriminator):
        h = d.body(x)
        if d.minibatch_std is not None:
            h = d.minibatch_std(h)
        return h.flatten(1)
    if isinstance(d, MLPDiscriminator):
        x = x.reshape(x.shape[0], -1)
        if d.minibatch_std is not None:
            x = d.minibatch_std(x)
        return d.net[:-1](x)
    raise ConfigError(f"InfoGAN shares the body of a DCGAN or MLP D, not {type(d).__name__}")


def feature_dim(d: nn.Module) -> int:
    """Width of `body_features`."""
    d = getattr(d, "module", d)
    layer = d.head if isinstance(d, DCGANDiscriminator) else d.net[-1]
    return int(layer.in_features)


def q_head(
    features: int,
    width: int,
    categorical: int,
    continuous: int,
    fixed_std: bool = False,
    batch_norm: bool = False,
    noise: int = 0,
) -> nn.Sequential:
    """Q's head: K categorical logits, C means and (unless the std is fixed) C log-stds, then
    `noise` estimates of the noise dims (ClusterGAN's noise reconstruction). With `batch_norm`,
    BN follows the hidden layer (the paper's MNIST Q: FC-BN-lReLU-FC)."""
    norm = [nn.BatchNorm1d(width)] if batch_norm else []
    return nn.Sequential(
        nn.Linear(features, width),
        *norm,
        nn.LeakyReLU(0.2),
        nn.Linear(width, categorical + (1 if fixed_std else 2) * continuous + noise),
    )


class SeparateQ(nn.Module):
    """Q with a body of its own (`model.q_shared: false`; ClusterGAN's encoder, Mukherjee et al.
    2019): D's architecture without BN or spectral norm, not sharing D's weights, then the head.
    D's body learns to tell real from generated, so a Q head on it reads real digits off the
    features it was trained on; a body of its own has no such pull."""

    def __init__(self, arch: dict[str, Any], head: nn.Module) -> None:
        super().__init__()
        self.body = build_discriminator({**arch, "d_batch_norm": False, "spectral_norm": False})
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(body_features(self.body, x))


def build_q(arch: dict[str, Any], d: nn.Module, codes: dict[str, Any]) -> nn.Module:
    """Q's head on D's body (`codes["q_shared"]`, the default) or on a body of its own."""
    head = q_head(
        feature_dim(d),
        int(codes["q_width"]),
        int(codes["categorical"]),
        int(codes["continuous"]),
        float(codes.get("q_std", 0.0)) > 0,
        bool(codes.get("q_batch_norm", False)),
        int(codes.get("q_noise_outputs", 0)),
    )
    return head if codes.get("q_shared", True) else SeparateQ(arch, head)


def q_logits(q: nn.Module, d: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Q's outputs for samples `x`: on D's body, or on Q's own (`SeparateQ`)."""
    inner = getattr(q, "module", q)
    return q(x) if isinstance(inner, SeparateQ) else q(body_features(d, x))


def split_codes(z: torch.Tensor, categorical: int, continuous: int) -> tuple[torch.Tensor, ...]:
    """(category [n], continuous codes [n, C]) that G reads from z."""
    cat = z[:, :categorical].argmax(1) if categorical else z.new_zeros(len(z), dtype=torch.long)
    return cat, z[:, categorical : categorical + continuous]


def info_loss(
    q_out: torch.Tensor,
    cat: torch.Tensor,
    cont: torch.Tensor,
    categorical: int,
    lambda_cat: float,
    lambda_cont: float,
    q_std: float = 0.0,
    noise: torch.Tensor | None = None,
    lambda_noise: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """λ_cat × CE(Q's logits, c_cat) + λ_cont × Gaussian NLL(c_cont | Q's mean, std)
    [+ λ_noise × the squared error of Q's noise estimates, summed over dims, batch mean].

    The std is Q's output (`q_out` holds C means then C log-stds) or, with `q_std` > 0, fixed
    (`q_out` holds the C means only; q_std = 1 is the paper's unit-variance factored Gaussian,
    whose NLL is half the squared error plus a constant). Minimising the loss maximises the
    bound L_I = H(c) − (CE + NLL): the stats report the categorical part of the bound,
    `info_cat` = log K − CE (≤ I(c_cat; G(z, c)), in nats), and the NLL. With `noise` [n, N],
    the last N columns of `q_out` estimate it (ClusterGAN, Mukherjee et al. 2019: β_n‖z_n −
    E(G(z))_n‖²); stats `q_noise_mse`.
    """
    c = cont.shape[1]
    loss = q_out.new_zeros(())
    stats: dict[str, float] = {}
    if categorical:
        ce = F.cross_entropy(q_out[:, :categorical].float(), cat)
        loss = loss + lambda_cat * ce
        stats["info_cat"] = math.log(categorical) - float(ce.detach())
    if c:
        mean = q_out[:, categorical : categorical + c].float()
        if q_std > 0:
            log_std = torch.full_like(mean, math.log(q_std))
        else:
            log_std = q_out[:, categorical + c : categorical + 2 * c].float()
            log_std = log_std.clamp(*LOG_STD_RANGE)
        nll = 0.5 * math.log(2 * math.pi) + log_std + 0.5 * ((cont - mean) / log_std.exp()) ** 2
        nll = nll.sum(1).mean()
        loss = loss + lambda_cont * nll
        stats["q_cont_nll"] = float(nll.detach())
    if noise is not None and noise.shape[1]:
        estimate = q_out[:, q_out.shape[1] - noise.shape[1] :].float()
        mse = ((noise - estimate) ** 2).sum(1).mean()
        loss = loss + lambda_noise * mse
        stats["q_noise_mse"] = float(mse.detach())
    return loss, stats


def augmenter(policy: str):
    """What Q's input passes through while training: a DiffAugment policy (Zhao et al. 2020)
    or nothing. Q must then read the code through shifts/cutouts, not from exact pixels."""
    if not policy:
        return lambda x: x
    from gankit.augment.diffaugment import DiffAugment

    return DiffAugment(policy)


class InfoGAN(GAN):
    """Generator `g`, discriminator `d` and Q's head `q` (on D's body) of an `infogan` config;
    the GAN's noise, state and sampling, with the information term in both steps."""

    def __init__(self, cfg, dataset) -> None:
        from gankit.engine.model import GenerativeModel

        GenerativeModel.__init__(self)
        m = cfg.model
        self.cfg, self.dataset = cfg, dataset
        self.categorical, self.continuous = m.categorical, m.continuous
        self.arch = network_spec(m, dataset.shape)
        d = build_discriminator(self.arch)
        self.networks = {
            "g": build_generator(self.arch),
            "d": d,
            "q": build_q(self.arch, d, self.codes_spec()),
        }
        self.step_count = 0  # finished steps: the instance-noise schedule reads it
        self.objective = build_objective(cfg.objective)
        self.q_augment = augmenter(m.q_augment)
        self.latent_dim, self.batch_size = self.arch["latent_dim"], cfg.train.batch_size
        self.noise = torch.Generator().manual_seed(cfg.train.seed + 1)
        self.fixed_noise = self._scale_noise(self._traversal_noise(cfg.train.seed + 2))

    def _scale_noise(self, z: torch.Tensor) -> torch.Tensor:
        """z with its noise dims (after the codes) times model.noise_std (ClusterGAN's small-σ
        noise, Mukherjee et al. 2019: the noise cannot carry large changes, so the categorical
        code has to). `export` folds σ into G's first layer, so the saved G reads N(0, 1)."""
        sigma = self.cfg.model.noise_std
        if sigma != 1.0:
            z = z.clone()
            z[:, self.categorical + self.continuous :] *= sigma
        return z

    @torch.no_grad()
    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """n samples of the live (EMA) G from seeded noise, the noise dims at model.noise_std."""
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        z = self._scale_noise(torch.randn(n, self.latent_dim, generator=gen))
        net = self.sampling_network("g")
        was_training = net.training
        net.eval()
        out = net(z.to(self.device)).float().cpu()
        net.train(was_training)
        return out

    def latent(self, batches: Batches) -> torch.Tensor:
        """The GAN's N(0, 1) draw with the noise dims scaled by model.noise_std."""
        return self._scale_noise(super().latent(batches))

    def _traversal_noise(self, seed: int) -> torch.Tensor:
        """Preview latents: rows of one noise draw, the categorical code 0..K-1 along a row
        (or continuous code 0 from -2 to 2 when there is no categorical code)."""
        k = self.categorical
        steps = k or 8
        z = torch.randn(8, self.latent_dim, generator=torch.Generator().manual_seed(seed))
        z = z.repeat_interleave(steps, 0)
        if k:
            z[:, :k] = F.one_hot(torch.arange(k).repeat(8), k).float()
        else:
            z[:, 0] = torch.linspace(-2, 2, steps).repeat(8)
        return z

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """G at train.lr_g; D with Q's head at train.lr_d."""
        t = self.cfg.train
        d_params = [*self.networks["d"].parameters(), *self.networks["q"].parameters()]
        return {
            "g": make_optimizer(
                t.optimizer, self.networks["g"].parameters(), t.lr_g, t.betas, t.momentum
            ),
            "d": make_optimizer(t.optimizer, d_params, t.lr_d, t.betas, t.momentum),
        }

    def _info(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The information term of samples `x` generated from `z`."""
        m = self.cfg.model
        q_out = q_logits(self.live["q"], self.live["d"], self.q_augment(x))
        cat, cont = split_codes(z, self.categorical, self.continuous)
        noise = z[:, self.categorical + self.continuous :] if m.lambda_noise > 0 else None
        return info_loss(
            q_out,
            cat,
            cont.float(),
            self.categorical,
            m.lambda_cat,
            m.lambda_cont,
            m.q_std,
            None if noise is None else noise.float(),
            m.lambda_noise,
        )

    def instance_noise(self, x: torch.Tensor) -> torch.Tensor:
        """`x` plus Gaussian noise of std model.instance_noise × (1 − step / train.steps), what
        D's adversarial term sees (Sønderby et al. 2017; Arjovsky & Bottou 2017): real and
        generated distributions overlap early on, so D cannot separate them perfectly.
        Q reads the clean samples."""
        std = self.cfg.model.instance_noise * max(0.0, 1 - self.step_count / self.cfg.train.steps)
        if std <= 0:
            return x
        noise = torch.randn(x.shape, generator=self.noise).to(device=x.device, dtype=x.dtype)
        return x + std * noise

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """k D updates (adversarial loss + λ L_I for Q's head and D's body), then one G update
        (adversarial loss + λ L_I)."""
        g, d = self.live["g"], self.live["d"]
        clip = self.cfg.train.grad_clip
        d_params = [*self.networks["d"].parameters(), *self.networks["q"].parameters()]
        stats: dict[str, float] = {}
        for _ in range(self.cfg.train.d_steps):
            real = batches.next().x
            z = self.latent(batches)
            with torch.no_grad(), self.autocast():
                fake = g(z)
            with self.autocast():
                loss_d, stats = self.objective.discriminator_loss(
                    d, self.instance_noise(real), self.instance_noise(fake)
                )
                info_d, _ = self._info(fake, z)
            update(loss_d + info_d, optimizers["d"], iter(d_params), clip)
            self.objective.after_discriminator_step(self.networks["d"])
        z = self.latent(batches)
        with self.autocast():
            fake = g(z)
            loss_g = self.objective.generator_loss(
                d, self.instance_noise(fake), self.instance_noise(real)
            )
            info_g, info_stats = self._info(fake, z)
        update(loss_g + info_g, optimizers["g"], self.networks["g"].parameters(), clip)
        self.step_count += 1
        return {
            "loss_d": float(loss_d.detach()),
            "loss_g": float(loss_g.detach()),
            "loss_info": float(info_g.detach()),
            **stats,
            **info_stats,
        }

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "step_count": self.step_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.step_count = int(state.get("step_count", 0))

    def spec(self) -> dict[str, Any]:
        """The GAN's model.json contents with the code layout and Q's head."""
        return {**super().spec(), "codes": self.codes_spec()}

    def codes_spec(self) -> dict[str, Any]:
        m = self.cfg.model
        return {
            "categorical": m.categorical,
            "continuous": m.continuous,
            "noise_dim": m.noise_dim,
            "q_width": m.q_width,
            "q_std": m.q_std,
            "q_batch_norm": m.q_batch_norm,
            "q_noise_outputs": m.noise_dim if m.lambda_noise > 0 else 0,
            "q_shared": m.q_shared,
            "noise_std_folded": m.noise_std,
            "layout": "z = [categorical slots (argmax = category), continuous codes, noise]",
            "prior": "categorical uniform over K; continuous N(0, 1) each",
        }

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """G, D (rejection sampling) and Q's head (`gankit.metrics.codes`)."""
        weights, spec = super().export()
        if self.cfg.model.noise_std != 1.0:
            weights = fold_noise_std(
                weights,
                self.latent_dim,
                self.categorical + self.continuous,
                self.cfg.model.noise_std,
            )
        weights.update({Q_PREFIX + k: v for k, v in self.networks["q"].state_dict().items()})
        return weights, spec


def fold_noise_std(
    weights: dict[str, torch.Tensor], latent_dim: int, first_noise: int, sigma: float
) -> dict[str, torch.Tensor]:
    """G's weights with σ multiplied into the noise columns of its first (linear) layer: G
    trained on noise N(0, σ²) then reads N(0, 1) noise exactly as before (both G families start
    with a Linear on z; the categorical one-hot passes the noise dims through unchanged)."""
    names = [
        k
        for k, v in weights.items()
        if k.endswith("weight") and v.ndim == 2 and not k.startswith(DISCRIMINATOR_PREFIX)
    ]
    first = next((k for k in names if weights[k].shape[1] == latent_dim), None)
    if first is None:
        raise ConfigError("model.noise_std != 1 needs a G whose first layer is linear on z")
    folded = dict(weights)
    w = weights[first].clone()
    w[:, first_noise:] *= sigma
    folded[first] = w
    return folded


class CodeClassifier:
    """Q's categorical head on D's body (or on Q's own, `model.q_shared: false`), loaded from an
    InfoGAN model directory: which category of the code a sample shows (what the code–class
    agreement metric reads)."""

    def __init__(self, d: nn.Module, q: nn.Module, spec: dict[str, Any]) -> None:
        self.d, self.q, self.spec = d.eval(), q.eval(), spec
        self.categorical = int(spec["codes"]["categorical"])
        self.shape = tuple(spec["data"]["shape"])

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Q's categorical logits [n, K] for samples `x` [n, *shape] in the data range."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if tuple(x.shape[1:]) != self.shape or not torch.isfinite(x).all():
            raise DataError(
                f"x must be finite samples of shape [n, {', '.join(map(str, self.shape))}]"
            )
        out = torch.cat([q_logits(self.q, self.d, c) for c in x.split(4096)])
        return out[:, : self.categorical]

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The category Q assigns to each sample."""
        return self.logits(x).argmax(1)


def load_code_classifier(path: Any) -> CodeClassifier:
    """Q's categorical head from an InfoGAN run or model directory (hash-checked, no pickle)."""
    from gankit.generator import check_generator_spec
    from gankit.modeldir import read_model_dir

    tensors, spec = read_model_dir(path, GENERATOR_KINDS, check=check_generator_spec)
    codes = spec.get("codes")
    if not codes or not codes.get("categorical"):
        raise CheckpointError(f"{path}: not an InfoGAN with a categorical code (no 'codes')")
    arch = spec["architecture"]
    d = build_discriminator(arch)
    q = build_q(arch, d, codes)
    try:
        d.load_state_dict(_under(tensors, DISCRIMINATOR_PREFIX))
        q.load_state_dict(_under(tensors, Q_PREFIX))
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: D or Q weights do not fit model.json ({exc})") from exc
    return CodeClassifier(d, q, spec)


def _under(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
