"""Typed configuration: dataclasses loaded from YAML, with `a.b=c` overrides and strict checks.

An unknown key, a wrong type or an impossible value raises `ConfigError` naming the key, the
value and what is allowed, with the closest valid key suggested for typos.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import ConfigError


# --- data sections, chosen by `data.name` --------------------------------------------------------
@dataclass
class ImageDataConfig:
    """A fixed image dataset: digits, mnist, fashion-mnist, cifar10, or a folder of images."""

    name: str = "digits"  # digits | mnist | fashion-mnist | cifar10 | folder
    root: str | None = None  # folder with the files, for mnist/fashion-mnist/cifar10/folder
    download: bool = False  # fetch missing files (checksummed); never done unless asked
    split: str = "train"  # train | test | all
    image_size: int | None = None  # square size: folders resized; others padded (28→32) or resized
    channels: int = 3  # folder images: 1 (grey) or 3 (RGB)


@dataclass
class StackedDigitsDataConfig:
    """3 independent digits as 3 channels: 1,000 modes (Metz et al. 2017)."""

    name: str = "stacked-digits"
    n_samples: int = 100_000
    split: str = "train"
    image_size: int | None = None
    seed: int = 0


@dataclass
class RingDataConfig:
    """A ring of Gaussians (VEEGAN protocol: 8 modes, radius 1, std 0.01)."""

    name: str = "ring"
    n_samples: int = 100_000  # size of the fixed training set
    modes: int = 8
    radius: float = 1.0
    std: float | None = None  # None takes the preset (0.01)
    seed: int = 0


@dataclass
class GridDataConfig:
    """A size × size grid of Gaussians (VEEGAN protocol: 5 × 5, spacing 2, std 0.05)."""

    name: str = "grid"
    n_samples: int = 100_000
    size: int = 5
    spacing: float = 2.0
    std: float | None = None  # None takes the preset (0.05)
    seed: int = 0


@dataclass
class SwissRollDataConfig:
    """The 2-D swiss roll."""

    name: str = "swiss-roll"
    n_samples: int = 100_000
    seed: int = 0


@dataclass
class UnpairedDataConfig:
    """Two unpaired image domains A and B (CycleGAN): two folders of images, or a built-in
    pair made from the digits (`domains`, each image in one domain only)."""

    name: str = "unpaired"
    root_a: str | None = None  # folder of domain A images (any layout, searched recursively)
    root_b: str | None = None  # folder of domain B images
    domains: str | None = None  # built-in instead of the roots: digits-thick | digits-mirror
    split: str = "train"  # built-in domains: digits split (train | test | all)
    image_size: int | None = None  # square size both domains are resized to
    channels: int | None = None  # 1 or 3; None: as the files are (both domains must agree)
    seed: int = 0  # built-in domains: how the digits are split between A and B


DATA_SECTIONS: dict[str, type] = {
    **dict.fromkeys(("digits", "mnist", "fashion-mnist", "cifar10", "folder"), ImageDataConfig),
    "stacked-digits": StackedDigitsDataConfig,
    "ring": RingDataConfig,
    "grid": GridDataConfig,
    "swiss-roll": SwissRollDataConfig,
    "unpaired": UnpairedDataConfig,
}
DataConfig = ImageDataConfig  # the default section


# --- model sections, chosen by `model.family` (see gankit.registry) ------------------------------
@dataclass
class GANModelConfig:
    """What every GAN network family shares."""

    family: str = "dcgan"
    latent_dim: int = 64
    g_width: int = 64  # base channels (conv) or hidden units (mlp)
    d_width: int = 64
    spectral_norm: bool = False  # on every discriminator layer
    init: str = "default"  # default | dcgan | orthogonal
    latent_categories: int = 0  # K > 0: z[:, :K] becomes a uniform one-hot code (disconnected)
    # PacGAN: D judges `pack` samples concatenated. train.batch_size counts samples, so D sees
    # batch_size / pack packs per step (batch_size must be a multiple of pack).
    pack: int = 1


@dataclass
class DCGANModelConfig(GANModelConfig):
    """DCGAN (Radford et al. 2016)."""

    d_batch_norm: bool = False
    minibatch_std: bool = False  # ProGAN minibatch standard deviation in D


@dataclass
class MLPModelConfig(GANModelConfig):
    """MLP generator and discriminator."""

    family: str = "mlp"
    g_depth: int = 2  # hidden layers of G
    d_depth: int = 2  # hidden layers of D
    g_activation: str = "relu"
    d_activation: str = "leaky_relu"
    g_batch_norm: bool = False
    g_output: str = "tanh"  # tanh | sigmoid | none
    d_dropout: float = 0.0
    minibatch_std: bool = False


@dataclass
class GoodfellowModelConfig(GANModelConfig):
    """ReLU-MLP generator, maxout discriminator with dropout (Goodfellow et al. 2014)."""

    family: str = "goodfellow"
    g_depth: int = 2
    d_depth: int = 2
    g_activation: str = "relu"
    g_batch_norm: bool = False
    g_output: str = "tanh"
    maxout_pieces: int = 5
    d_dropout: float = 0.0  # dropout after each maxout layer (0.5 in the paper's recipe)
    d_input_dropout: float = 0.2  # dropout on D's input


@dataclass
class ResNetModelConfig(GANModelConfig):
    """SNGAN ResNet generator and discriminator, 32 px."""

    family: str = "resnet"


@dataclass
class ConditionalModelConfig:
    """Class-conditional GAN (Mirza & Osindero 2014), DCGAN networks: G with class-conditional
    batch norm; D conditioned by projection (Miyato & Koyama 2018) or an auxiliary classifier
    (ACGAN, Odena et al. 2017). The data must carry labels in 0..num_classes-1."""

    family: str = "cdcgan"
    latent_dim: int = 64
    g_width: int = 64
    d_width: int = 64
    num_classes: int = 10
    conditioning: str = "projection"  # projection | acgan | tac (acgan + twin classifier)
    class_weight: float = 1.0  # acgan, tac: weight of the class cross-entropy in the D and G losses
    spectral_norm: bool = False
    init: str = "default"  # default | dcgan | orthogonal
    d_batch_norm: bool = False
    # self-conditioned GAN (Liu et al. 2020): labels are k-means clusters of the data
    # (num_classes of them), not the data's own; sampling draws clusters by their share
    self_conditioned: bool = False
    # self-conditioned only: weight λ of MSGAN's mode-seeking term in G's loss (Mao et al. 2019)
    mode_seeking: float = 0.0


@dataclass
class ConditionalMLPModelConfig(ConditionalModelConfig):
    """Class-conditional GAN with MLP networks (toy or flat data with labels)."""

    family: str = "cmlp"
    g_depth: int = 2
    d_depth: int = 2
    g_activation: str = "relu"
    g_output: str = "tanh"  # tanh | sigmoid | none
    d_activation: str = "leaky_relu"  # D's layers (when not maxout)
    d_maxout_pieces: int = 0  # 0: Linear + d_activation layers; k >= 1: maxout of k pieces


@dataclass
class BigGANModelConfig:
    """BigGAN (Brock et al. 2019) at small scale: shared class embedding, hierarchical latent,
    class-conditional BN from [z chunk, embedding], self-attention, spectral norm in G and D,
    projection D and orthogonal regularisation of G (train with objective.loss = hinge)."""

    family: str = "biggan"
    latent_dim: int = 64  # split into one chunk per G stage (4×4 map, then one per block)
    g_width: int = 64  # channels of G's last block (doubling towards 4×4)
    d_width: int = 64  # channels of D's first block (doubling towards 4×4)
    num_classes: int = 10
    embed_dim: int = 128  # the shared class embedding
    attention: int = 0  # self-attention at this resolution (px; an inner stage, e.g. 16 at 32 px)
    ortho_reg: float = 1e-4  # β of β‖WWᵀ ⊙ (1 − I)‖²_F on G's weights (0 = off)
    conditioning: str = "projection"  # projection | acgan
    class_weight: float = 1.0  # acgan only
    spectral_norm: bool = True  # on every conv and linear layer of G and D
    init: str = "orthogonal"  # default | dcgan | orthogonal


@dataclass
class CycleGANModelConfig:
    """CycleGAN (Zhu et al. 2017): generators G: A->B and F: B->A, discriminators D_A, D_B,
    least-squares loss, cycle-consistency and identity losses, a pool of past fakes per D.
    Needs `data.name: unpaired`."""

    family: str = "cyclegan"
    g_width: int = 32  # base channels of G (doubled at each of its 2 downsamplings)
    d_width: int = 32
    g_blocks: int = 2  # residual blocks at G's bottleneck (6 or 9 in the paper)
    d_layers: int = 2  # stride-2 convolutions of D
    patch: bool = True  # PatchGAN D (a grid of logits); False: one logit per image
    norm: str = "instance"  # instance | batch | none (G and D)
    cycle_weight: float = 10.0  # lambda_cyc
    identity_weight: float = 5.0  # lambda_id on ||G(b) - b||_1 + ||F(a) - a||_1 (0 = off)
    pool_size: int = 50  # past fakes kept per D (0 = D sees the newest fakes only)
    g_global: bool = False  # a dense residual layer at G's bottleneck (small images, <= 16 px)


@dataclass
class ProGANModelConfig:
    """ProGAN (Karras et al. 2018): progressive growing with fade-in, equalised learning rate,
    pixel norm in G, minibatch standard deviation in D, WGAN-GP with the drift term."""

    family: str = "progan"
    latent_dim: int = 64
    resolutions: list[int] = field(default_factory=lambda: [4, 8])  # powers of 2, from 4
    widths: list[int] = field(default_factory=lambda: [64, 64])  # channels per resolution
    phase_steps: int = 1000  # steps of each stable phase (images = steps x batch_size)
    fade_steps: int = 1000  # steps of each fade-in (alpha 0 -> 1)
    gradient_penalty: float = 10.0  # WGAN-GP lambda
    drift: float = 0.001  # epsilon_drift x E[D(x)^2]
    minibatch_std_group: int = 4


ModelConfig = DCGANModelConfig  # the default section
LEGACY_KEYS = {"model.depth": ("g_depth", "d_depth")}  # one `depth` used to set both


@dataclass
class ObjectiveConfig:
    """The adversarial loss and its penalties."""

    loss: str = "non-saturating"  # minimax | non-saturating | wasserstein | least-squares | hinge
    gradient_penalty: float = 0.0  # WGAN-GP weight λ (10 in Gulrajani et al.)
    r1: float = 0.0  # R1 weight γ (Mescheder et al. 2018)
    weight_clip: float = 0.0  # WGAN weight clipping bound c (0.01 in Arjovsky et al.)
    unroll_steps: int = 0  # Unrolled GAN (Metz et al. 2017): G loss after k simulated D steps
    unroll_lr: float = 1e-4  # SGD step size of the simulated D updates
    unroll_backprop: bool = True  # differentiate through the simulated steps (False: surrogate)
    augment: str = ""  # DiffAugment policy, comma-separated: color, translation, cutout
    augment_p: float = 1.0  # probability of augmenting each sample (ADA's p; start value)
    ada_target: float = 0.0  # ADA: adapt p so E[sign D(real)] stays at this (0 = fixed p; 0.6)
    ada_speed: float = 100_000.0  # ADA: real images seen for p to move by 1 (ADA: 500k)


@dataclass
class VAEModelConfig:
    """Variational autoencoder (Kingma & Welling 2014): MLP encoder and decoder, the ELBO.

    Its one optimizer reads train.optimizer, train.lr_g and train.betas (lr_d is unused)."""

    family: str = "vae"
    latent_dim: int = 16
    widths: list[int] = field(default_factory=lambda: [256, 128])  # encoder; decoder mirrors
    activation: str = "relu"  # relu | leaky_relu | tanh | elu | silu
    likelihood: str = "gaussian"  # gaussian | bernoulli (pixels in [-1, 1] read as [0, 1])
    decoder_std: float = 0.0  # gaussian: fixed std in data units; 0 = learned per pixel
    kl_warmup_steps: int = 0  # KL weight rises linearly from 0 to 1 over these steps
    dequantize: float = 0.0  # uniform noise of this width on every training input (0.125:
    # one grey level of the [-1, 1] digits), so a Gaussian decoder fits a density


@dataclass
class BiGANModelConfig:
    """BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): encoder E: x -> z, generator
    G: z -> x and a discriminator on (x, z) pairs, MLPs. Optimizers: `ge` (G and E together,
    train.lr_g) and `d` (train.lr_d); only objective.loss applies."""

    family: str = "bigan"
    latent_dim: int = 8
    g_widths: list[int] = field(default_factory=lambda: [256, 256])
    e_widths: list[int] = field(default_factory=lambda: [256, 256])
    d_widths: list[int] = field(default_factory=lambda: [512, 512])
    activation: str = "relu"  # G and E (D: leaky ReLU)
    d_dropout: float = 0.2  # dropout after every hidden layer of D
    stochastic_encoder: bool = True  # ALI: z = mu + sigma * eps; False: BiGAN's z = mu(x)
    # ALICE (Li et al. 2017), not in BiGAN/ALI: + weight x mean ||G(E(x)) - x||^2 for G and E
    reconstruction_weight: float = 0.0


@dataclass
class VAEGANModelConfig:
    """VAE-GAN (Larsen et al. 2016): the VAE's encoder and decoder (the decoder is the
    generator), an MLP discriminator whose hidden layer `feature_layer` is the space of the
    reconstruction loss. Optimizers: `vae` (encoder and decoder, train.lr_g) and `d` (lr_d)."""

    family: str = "vaegan"
    latent_dim: int = 8
    widths: list[int] = field(default_factory=lambda: [256, 128])  # encoder; decoder mirrors
    activation: str = "relu"
    d_widths: list[int] = field(default_factory=lambda: [256, 128])
    d_dropout: float = 0.0
    feature_layer: int = 1  # hidden layer of D (1-based) whose activations are compared
    feature_std: float = 1.0  # sigma of the Gaussian observation model in D's feature space
    gamma: float = 0.1  # weight of the feature reconstruction against the GAN term (decoder)


@dataclass
class InfoGANModelConfig:
    """InfoGAN (Chen et al. 2016): categorical and continuous latent codes beside the noise, a
    Q head on D's body, and λ × the mutual-information lower bound for G and Q."""

    family: str = "infogan"
    net: str = "dcgan"  # dcgan | mlp: G, and D whose body Q shares
    noise_dim: int = 16  # incompressible noise
    categorical: int = 10  # categories of the one categorical code (0 = none)
    continuous: int = 2  # continuous codes, each N(0, 1)
    lambda_cat: float = 1.0  # λ of the categorical code's term of the bound
    lambda_cont: float = 0.1  # λ of the continuous codes' term
    q_width: int = 128  # hidden units of Q's head
    q_std: float = 0.0  # fixed std of Q's Gaussian for the continuous codes (0 = learned; 1: MSE)
    instance_noise: float = 0.0  # std of noise on D's adversarial inputs, annealed to 0 (0 = off)
    noise_std: float = 1.0  # std of the noise dims while training (ClusterGAN: 0.1); folded into G
    q_batch_norm: bool = False  # BN after Q's hidden layer (the paper's MNIST Q)
    lambda_noise: float = 0.0  # λ of Q's squared error on the noise dims (ClusterGAN; 0 = off)
    q_shared: bool = True  # Q's head on D's body (the paper); false: a body of its own (ClusterGAN)
    q_augment: str = ""  # DiffAugment policy on the samples Q reads while training ("" = off)
    g_width: int = 64
    d_width: int = 64
    g_depth: int = 2  # mlp only
    d_depth: int = 2  # mlp only
    d_batch_norm: bool = False  # dcgan only
    spectral_norm: bool = False
    init: str = "default"  # default | dcgan | orthogonal


@dataclass
class SSGANModelConfig:
    """Semi-supervised GAN (Salimans et al. 2016): D is a K-class classifier (the fake class is
    implicit), trained on `labels_per_class` labels per class plus the unlabelled rest; G by
    feature matching."""

    family: str = "ssgan"
    net: str = "mlp"  # mlp | dcgan: the generator
    latent_dim: int = 32
    g_width: int = 256
    g_depth: int = 2  # mlp only
    d_widths: list[int] = field(default_factory=lambda: [500, 250, 250])  # classifier layers
    num_classes: int = 10
    labels_per_class: int = 10  # labelled training samples per class; the rest are unlabelled
    label_seed: int = 0  # which samples keep their labels
    labelled_batch: int = 64  # labelled samples per step (at most the labelled set)
    input_noise: float = 0.3  # std of the Gaussian noise on D's input (train mode only)
    hidden_noise: float = 0.5  # ... and on the input of every further layer
    unsupervised_weight: float = 1.0  # weight of the GAN term in D's loss
    classifier_ema: float = 0.0  # EMA decay of D's weights; the exported classifier (0 = off)
    init: str = "default"  # default | dcgan | orthogonal


@dataclass
class TrainConfig:
    """The optimisation loop (Algorithm 1 of Goodfellow et al. 2014)."""

    steps: int = 2000  # generator updates
    batch_size: int = 64  # global batch (split across ranks under torchrun)
    d_steps: int = 1  # k: discriminator updates per generator update
    optimizer: str = "adam"  # adam | sgd | rmsprop
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    momentum: float = 0.0  # sgd / rmsprop
    lr_decay: str = "none"  # none | linear | cosine: both LRs fall to 0 at the last step
    ema: float = 0.0  # EMA decay of G's weights (0 = off; 0.999 typical)
    grad_clip: float = 0.0  # max gradient norm (0 = off)
    seed: int = 0
    deterministic: bool = False  # torch.use_deterministic_algorithms
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16 on CUDA) | bf16 | off
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 50
    progress: bool = True
    tensorboard: bool = False
    on_divergence: str = "stop"  # stop | rollback (reload last checkpoint, lower the LRs)
    rollback_lr_factor: float = 0.5
    max_rollbacks: int = 3
    d_win_patience: int = 1000  # stop if D separates every batch perfectly this many steps
    # stop if in half of the last N steps D separated every batch by a saturating margin (logit
    # gap >= 20): an exploded game is caught within N steps, whatever the run length
    collapse_patience: int = 50
    parallel: str = "ddp"  # ddp | fsdp: how torchrun ranks share the networks (FSDP2 shards them)
    # model parallelism: network name -> device (`{g: cuda:0, d: cuda:1}`); unnamed ones stay on
    # train.device
    placement: dict[str, str] = field(default_factory=dict)
    # differential privacy of the image/toy GAN families (DP-SGD on D; docs/privacy.md): the
    # target ε (None = off), δ (< 1 / dataset size) and the per-sample clipping bound C
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    dp_max_grad_norm: float = 1.0


@dataclass
class Config:
    """A whole training run."""

    data: Any = field(default_factory=ImageDataConfig)  # class chosen by data.name
    model: Any = field(default_factory=DCGANModelConfig)  # class chosen by model.family
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out: str = "runs/run"

    def model_dict(self) -> dict[str, Any]:
        """The model section as a plain dictionary (the architecture spec of model.json)."""
        return dataclasses.asdict(self.model)


CHOICES: dict[str, tuple[str, ...]] = {
    "data.name": tuple(DATA_SECTIONS),
    "data.split": ("train", "test", "all"),
    "model.g_output": ("tanh", "sigmoid", "none"),
    "model.init": ("default", "dcgan", "orthogonal"),
    "model.conditioning": ("projection", "acgan", "tac"),
    "objective.loss": ("minimax", "non-saturating", "wasserstein", "least-squares", "hinge"),
    "train.optimizer": ("adam", "sgd", "rmsprop"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.parallel": ("ddp", "fsdp"),
    "train.amp": ("auto", "bf16", "off"),
    "train.on_divergence": ("stop", "rollback"),
    "train.lr_decay": ("none", "linear", "cosine"),
    "model.likelihood": ("gaussian", "bernoulli"),
    "model.net": ("dcgan", "mlp"),  # infogan, ssgan
}
POSITIVE = {
    "train.steps",
    "train.batch_size",
    "train.d_steps",
    "train.lr_g",
    "train.lr_d",
    "train.checkpoint_every",
    "train.sample_every",
    "train.log_every",
    "model.latent_dim",
    "model.g_width",
    "model.d_width",
    "data.n_samples",
    "train.d_win_patience",
    "train.collapse_patience",
    "model.maxout_pieces",
    "model.g_depth",
    "model.d_depth",
    "data.modes",
    "data.size",
    "data.radius",
    "data.spacing",
    "data.channels",
    "data.std",
    "data.image_size",
    "model.pack",
    "model.num_classes",
    "objective.unroll_lr",
    "objective.ada_speed",
    "train.dp_epsilon",
    "train.dp_delta",
    "train.dp_max_grad_norm",
}
NON_NEGATIVE = {
    "model.kl_warmup_steps",
    "model.decoder_std",
    "model.dequantize",
    "objective.gradient_penalty",
    "objective.r1",
    "objective.weight_clip",
    "train.grad_clip",
    "train.momentum",
    "model.d_dropout",
    "train.max_rollbacks",
    "objective.unroll_steps",
    "objective.ada_target",
    "model.latent_categories",
    "model.class_weight",
    "model.d_maxout_pieces",
    "model.mode_seeking",
}
# upper bounds: a mistyped size must be a clear error, not a multi-GB allocation
AT_MOST = {
    "model.latent_dim": 1 << 16,
    "model.g_width": 1 << 16,
    "model.d_width": 1 << 16,
    "model.g_depth": 64,
    "model.d_depth": 64,
    "model.pack": 64,
    "model.maxout_pieces": 64,
    "model.d_maxout_pieces": 64,
    "model.latent_categories": 1 << 16,
    "model.num_classes": 1 << 20,  # as gankit.generator bounds model.json's num_classes
    "train.batch_size": 1 << 20,
    "train.d_steps": 1000,
    "data.n_samples": 10_000_000,
    "data.image_size": 4096,
    "data.modes": 100_000,
    "data.size": 1000,
    "objective.unroll_steps": 100,
}
UNIT_INTERVAL = {
    "train.ema",
    "model.d_dropout",
    "model.d_input_dropout",
    "train.momentum",
    "train.rollback_lr_factor",
    "objective.ada_target",
}


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if origin is dict:
        key_type, item = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _type_ok(k, key_type) and _type_ok(v, item) for k, v in value.items()
        )
    return isinstance(value, hint)


def _coerce_float_string(value: Any, hint: Any) -> Any:
    """PyYAML reads `1e-4` (no dot) as a string; accept it where a float is expected."""
    if isinstance(value, str) and _type_ok(1.0, hint) and not _type_ok(value, hint):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"


def _section_class(name: str, values: Any) -> type:
    """The dataclass of the `data` or `model` section, chosen by its `name` / `family` key."""
    if name == "data":
        chosen = values.get("name", "digits") if isinstance(values, dict) else "digits"
        if chosen not in DATA_SECTIONS:
            raise ConfigError(
                f"data.name = {chosen!r} is not allowed{_suggest_value(chosen, DATA_SECTIONS)}"
                f"; choose one of {', '.join(DATA_SECTIONS)}"
            )
        return DATA_SECTIONS[chosen]
    from gankit.registry import family

    chosen = values.get("family", "dcgan") if isinstance(values, dict) else "dcgan"
    if not isinstance(chosen, str):
        raise ConfigError(f"model.family = {chosen!r} must be a string")
    return family(chosen).config_class()


def _suggest_value(value: Any, valid: Any) -> str:
    close = difflib.get_close_matches(str(value), list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _legacy(values: dict[str, Any], prefix: str, names: list[str]) -> dict[str, Any]:
    """Old spellings still read: `model.depth` sets both depths where the section has them."""
    values = dict(values)
    for old, new_keys in LEGACY_KEYS.items():
        section, _, key = old.partition(".")
        if prefix == f"{section}." and key in values:
            depth = values.pop(key)
            for new in new_keys:
                if new in names:
                    values.setdefault(new, depth)
    return values


def _check_float(path: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{path} = {value!r} must be a finite number")


def _build(cls: type, values: Any, prefix: str) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = _legacy(values, prefix, names)
    kwargs = {}
    for key, value in values.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}{_suggest(str(key), names)}")
        hint = hints[key]
        if cls is Config and key in ("data", "model"):
            kwargs[key] = _build(_section_class(key, value), value, f"{path}.")
            continue
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{path}.")
            continue
        value = _coerce_float_string(value, hint)
        if not _type_ok(value, hint):
            raise ConfigError(
                f"{path} = {value!r} has type {type(value).__name__}; expected {_type_name(hint)}"
            )
        if isinstance(value, float) or (hint is float and value is not None):
            value = float(value)
            _check_float(path, value)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, float):
                    _check_float(path, item)
        kwargs[key] = value
    return cls(**kwargs)


def _check_values(cfg: Config) -> None:
    flat = to_dict(cfg)
    for section, values in flat.items():
        if not isinstance(values, dict):
            continue
        for key, value in values.items():
            path = f"{section}.{key}"
            if value is None:
                continue
            if path in CHOICES and value not in CHOICES[path]:
                raise ConfigError(
                    f"{path} = {value!r} is not allowed; choose one of {', '.join(CHOICES[path])}"
                )
            if path in POSITIVE and not value > 0:
                raise ConfigError(f"{path} = {value!r} must be > 0")
            if path in NON_NEGATIVE and value < 0:
                raise ConfigError(f"{path} = {value!r} must be >= 0")
            if path in AT_MOST and value > AT_MOST[path]:
                raise ConfigError(f"{path} = {value!r} is too large (at most {AT_MOST[path]})")
            if path in UNIT_INTERVAL and not 0 <= value < 1:
                raise ConfigError(f"{path} = {value!r} must be in [0, 1)")
    if len(cfg.train.betas) != 2 or not all(0 <= b < 1 for b in cfg.train.betas):
        raise ConfigError(f"train.betas = {cfg.train.betas!r} must be two numbers in [0, 1)")
    pack = getattr(cfg.model, "pack", 1)  # families without packing have no `pack` key
    if cfg.train.batch_size % pack:
        raise ConfigError(
            f"train.batch_size = {cfg.train.batch_size} must be divisible by "
            f"model.pack = {pack} (the discriminator judges packs of that many samples)"
        )
    if cfg.train.dp_epsilon is not None:
        _check_dp(cfg)
    if not 0 <= cfg.objective.augment_p <= 1:
        raise ConfigError(f"objective.augment_p = {cfg.objective.augment_p!r} must be in [0, 1]")
    _check_augment_policy(cfg.objective.augment)
    if getattr(cfg.model, "mode_seeking", 0) and not cfg.model.self_conditioned:
        raise ConfigError(
            "model.mode_seeking is read by the self-conditioned GAN only; set "
            "model.self_conditioned: true, or model.mode_seeking: 0"
        )
    if cfg.data.name in ("mnist", "fashion-mnist", "cifar10", "folder") and not cfg.data.root:
        raise ConfigError(
            f"data.root is required for data.name = {cfg.data.name!r}: the folder "
            "holding (or receiving, with data.download=true) the files"
        )


def _check_dp(cfg: Config) -> None:
    """train.dp_* only where DP-SGD is built (the GAN families of `gankit.models.gan`)."""
    from gankit.registry import FAMILIES

    private = [name for name, f in FAMILIES.items() if f.builder == "gankit.models.gan:build"]
    if cfg.model.family not in private:
        raise ConfigError(
            f"train.dp_epsilon: model.family = {cfg.model.family!r} has no differentially "
            f"private training; use one of {', '.join(private)}, or unset train.dp_epsilon"
        )
    if not cfg.train.dp_delta < 1:
        raise ConfigError(f"train.dp_delta = {cfg.train.dp_delta!r} must be in (0, 1), e.g. 1e-5")


def _check_augment_policy(policy: str) -> None:
    from gankit.augment import POLICIES

    for name in filter(None, (p.strip() for p in policy.split(","))):
        if name not in POLICIES:
            raise ConfigError(
                f"objective.augment: unknown policy {name!r}; choose from {', '.join(POLICIES)}"
            )


def from_dict(values: dict[str, Any]) -> Config:
    """Build and validate a Config from nested dictionaries."""
    cfg = _build(Config, values or {}, "")
    _check_values(cfg)
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as nested plain dictionaries (for YAML, JSON and model.json)."""
    return dataclasses.asdict(cfg)


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=c` strings (values parsed as YAML scalars) to nested dictionaries."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
        node = values
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a YAML recipe (or the defaults when `path` is None), apply overrides, validate."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    return from_dict(apply_overrides(values, list(overrides or [])))


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    from gankit.modeldir import atomic_write_bytes

    atomic_write_bytes(path, yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())
