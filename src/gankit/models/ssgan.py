"""The semi-supervised GAN of Salimans et al. 2016 ("Improved Techniques for Training GANs", §5).

D is a classifier with K logits l_1..l_K; the (K+1)-th class "generated" is implicit with logit 0,
so D's probability that x is real is D(x) = Z(x) / (Z(x) + 1), Z(x) = Σ_k exp(l_k(x)). With
lse = log Z (the log-sum-exp trick), log D(x) = -softplus(-lse) and log(1 - D(x)) = -softplus(lse).
D minimises

    L_sup + w · L_unsup,  L_sup = CE(l(x_lab), y),
    L_unsup = E_real[softplus(-lse(x))] + E_fake[softplus(lse(G(z)))]

on a few labelled samples and the unlabelled rest; G minimises feature matching: the squared
difference of the mean last-hidden features of D on a real and a generated batch (§3.1).

D is an MLP with Gaussian noise on the input of every layer (train mode only), as in the paper's
MNIST model; G is a `gankit.nets` MLP or DCGAN generator. With `model.classifier_ema` > 0 an
exponential moving average of D's weights (Polyak averaging) is kept beside D and is the
classifier the run exports; the game itself always uses the live D. The run writes an
`image-generator` model directory (G samples as usual) with D under `auxiliary.classifier.`:
`load_classifier` turns it into a standalone classifier with `predict` and `predict_proba`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gankit.engine.ema import EMA
from gankit.engine.model import Batch, Batches, update
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.generator import AUXILIARY_PREFIX, GENERATOR_KINDS
from gankit.models.gan import GAN, make_optimizer
from gankit.nets import architecture_spec, build_generator
from gankit.nets.layers import init_weights

CLASSIFIER_PREFIX = AUXILIARY_PREFIX + "classifier."
MAX_LAYERS, MAX_WIDTH = 64, 1 << 16


def build(cfg) -> tuple[SSGAN, SemiSupervisedBatches]:
    """The SSGAN and its labelled + unlabelled batch provider (registry builder of `ssgan`)."""
    from gankit.data.source import load_dataset

    _check_objective(cfg.objective)
    dataset = load_dataset(cfg.data)
    m = cfg.model
    if dataset.labels is None:
        raise ConfigError(
            f"data.name = {dataset.name!r} has no labels; model.family = 'ssgan' needs a few "
            "(use a labelled dataset such as digits)"
        )
    if int(dataset.labels.max()) >= m.num_classes or int(dataset.labels.min()) < 0:
        raise ConfigError(
            f"model.num_classes = {m.num_classes}, but the labels lie in "
            f"{int(dataset.labels.min())}..{int(dataset.labels.max())}"
        )
    if not dataset.is_image and m.net == "dcgan":
        raise ConfigError("model.net = 'dcgan' needs images; use model.net=mlp")
    if not m.d_widths or m.labels_per_class < 1 or m.labelled_batch < 1:
        raise ConfigError(
            "model.d_widths needs at least one layer; model.labels_per_class and "
            "model.labelled_batch must be >= 1"
        )
    if min(m.input_noise, m.hidden_noise, m.unsupervised_weight) < 0:
        raise ConfigError("model.input_noise, hidden_noise, unsupervised_weight must be >= 0")
    if not 0 <= m.classifier_ema < 1:
        raise ConfigError(
            f"model.classifier_ema = {m.classifier_ema}: the EMA decay must be in [0, 1) "
            "(0 = off; 0.999 typical)"
        )
    labelled = choose_labelled(dataset.labels, m.num_classes, m.labels_per_class, m.label_seed)
    batches = SemiSupervisedBatches(
        dataset.x, dataset.labels, labelled, cfg.train.batch_size, m.labelled_batch, cfg.train.seed
    )
    return SSGAN(cfg, dataset), batches


def _check_objective(objective: Any) -> None:
    """ConfigError when the objective section asks for what SSGAN's fixed losses ignore."""
    from gankit.config import ObjectiveConfig

    default = ObjectiveConfig()
    changed = [
        key
        for key in ("loss", "gradient_penalty", "r1", "weight_clip", "unroll_steps", "augment")
        if getattr(objective, key) != getattr(default, key)
    ]
    if changed:
        raise ConfigError(
            f"objective.{changed[0]} is not used by model.family = 'ssgan' (its losses are "
            "Salimans et al.'s: supervised + unsupervised for D, feature matching for G); remove it"
        )


def choose_labelled(
    labels: torch.Tensor, num_classes: int, per_class: int, seed: int
) -> torch.Tensor:
    """Indices of `per_class` samples of every class, drawn with `seed` (the labelled set)."""
    gen = torch.Generator().manual_seed(seed)
    chosen = []
    for k in range(num_classes):
        members = torch.nonzero(labels == k).squeeze(1)
        if len(members) < per_class:
            raise ConfigError(
                f"model.labels_per_class = {per_class}, but class {k} has {len(members)} samples"
            )
        chosen.append(members[torch.randperm(len(members), generator=gen)[:per_class]])
    return torch.cat(chosen)


class SemiSupervisedBatches:
    """Batch `i`: an unlabelled minibatch of the whole training set (`x`) and a labelled one of
    the chosen samples (`extra["x_labelled"]`, `extra["y_labelled"]`); both are functions of
    (seed, i), so resume is exact."""

    def __init__(
        self,
        x: torch.Tensor,
        labels: torch.Tensor,
        labelled: torch.Tensor,
        batch_size: int,
        labelled_batch: int,
        seed: int,
    ) -> None:
        from gankit.data.source import BatchSampler

        self.x, self.labels, self.labelled = x, labels, labelled
        self.unlabelled_sampler = BatchSampler(len(x), batch_size, seed)
        self.labelled_sampler = BatchSampler(
            len(labelled), min(labelled_batch, len(labelled)), seed + 7919
        )

    def batch(self, index: int) -> Batch:
        idx = self.unlabelled_sampler.indices(index)
        lab = self.labelled[self.labelled_sampler.indices(index)]
        extra = {"x_labelled": self.x[lab], "y_labelled": self.labels[lab]}
        return Batch(self.x[idx], None, extra)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# --- the classifier D and the losses -----------------------------------------------------------
class NoisyClassifier(nn.Module):
    """x → [Gaussian noise → Linear → LeakyReLU] × layers → Gaussian noise → Linear → K logits.
    `forward` returns (logits, the last hidden features) — what feature matching reads."""

    def __init__(
        self,
        in_shape: Sequence[int],
        widths: Sequence[int],
        num_classes: int,
        input_noise: float = 0.3,
        hidden_noise: float = 0.5,
    ) -> None:
        super().__init__()
        sizes = [math.prod(in_shape), *widths]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.head = nn.Linear(sizes[-1], num_classes)
        self.input_noise, self.hidden_noise = input_noise, hidden_noise

    def _noisy(self, x: torch.Tensor, std: float) -> torch.Tensor:
        return x + std * torch.randn_like(x) if self.training and std > 0 else x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._noisy(x.reshape(x.shape[0], -1), self.input_noise)
        for layer in self.hidden:
            h = F.leaky_relu(layer(h), 0.2)
            h = self._noisy(h, self.hidden_noise)
        return self.head(h), h


def build_classifier(spec: dict[str, Any]) -> NoisyClassifier:
    """The classifier described by model.json's `classifier` entry."""
    return NoisyClassifier(
        spec["input_shape"],
        spec["widths"],
        spec["num_classes"],
        spec["input_noise"],
        spec["hidden_noise"],
    )


def supervised_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the K real classes on labelled samples (the fake class has p = 0 there,
    so the (K+1)-way cross-entropy restricted to real classes is the K-way one)."""
    return F.cross_entropy(logits.float(), labels)


def unsupervised_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-E log D(x) - E log(1 - D(G(z))) with D = Z/(Z+1): softplus(-lse) on real, softplus(lse)
    on fake, lse = logsumexp of the K logits."""
    real, fake = real_logits.float().logsumexp(1), fake_logits.float().logsumexp(1)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def feature_matching_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Mean over features of (batch mean of real features - batch mean of fake features)²."""
    return (global_mean(real) - global_mean(fake)).pow(2).mean()


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """The batch mean of `x`; under torchrun the mean over every rank's slice (the global
    batch, as one process has it), differentiable, so DDP's averaged gradients are those of
    one process (a per-rank mean would match each half-batch on its own)."""
    import torch.distributed as dist

    mean = x.float().mean(0)
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return mean
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(mean) / dist.get_world_size()


class SSGAN(GAN):
    """Generator `g` and classifier `d` of an `ssgan` config; the GAN's optimizers, noise,
    state and sampling, with Salimans et al.'s losses in the step."""

    def __init__(self, cfg, dataset) -> None:
        from gankit.engine.model import GenerativeModel

        GenerativeModel.__init__(self)
        m = cfg.model
        self.cfg, self.dataset = cfg, dataset
        arch = {"family": m.net, "latent_dim": m.latent_dim, "g_width": m.g_width, "init": m.init}
        if m.net == "mlp":
            arch.update(g_depth=m.g_depth, g_batch_norm=True, g_output="tanh")
        self.arch = architecture_spec(arch, dataset.shape)
        self.classifier_spec = {
            "input_shape": dataset.shape,
            "widths": list(m.d_widths),
            "num_classes": m.num_classes,
            "input_noise": m.input_noise,
            "hidden_noise": m.hidden_noise,
        }
        d = build_classifier(self.classifier_spec)
        init_weights(d, m.init)
        self.networks = {"g": build_generator(self.arch), "d": d}
        self.classifier_average = EMA(d, m.classifier_ema) if m.classifier_ema > 0 else None
        self.latent_dim, self.batch_size = m.latent_dim, cfg.train.batch_size
        self.noise = torch.Generator().manual_seed(cfg.train.seed + 1)
        self.fixed_noise = torch.randn(
            64, self.latent_dim, generator=torch.Generator().manual_seed(cfg.train.seed + 2)
        )
        self.objective = None

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """k classifier updates (supervised + unsupervised), then one G update (feature
        matching against the last unlabelled real batch)."""
        g, d = self.live["g"], self.live["d"]
        clip, weight = self.cfg.train.grad_clip, self.cfg.model.unsupervised_weight
        for _ in range(self.cfg.train.d_steps):
            batch = batches.next()
            real, x_lab, y_lab = batch.x, batch.extra["x_labelled"], batch.extra["y_labelled"]
            with torch.no_grad(), self.autocast():
                fake = g(self.latent(batches))
            with self.autocast():
                lab_logits, _ = d(x_lab)
                sup = supervised_loss(lab_logits, y_lab)
                unsup = unsupervised_loss(d(real)[0], d(fake)[0])
            update(sup + weight * unsup, optimizers["d"], self.networks["d"].parameters(), clip)
            if self.classifier_average is not None:
                self.classifier_average.update(self.networks["d"])
        with self.autocast():
            with torch.no_grad():
                real_features = d(real)[1]
            # D's plain module: only its features enter G's loss, and DDP would wait for
            # gradients of its logit layer (D's gradients of this step are discarded anyway)
            plain_d = getattr(d, "module", d)
            loss_g = feature_matching_loss(real_features, plain_d(g(self.latent(batches)))[1])
        update(loss_g, optimizers["g"], self.networks["g"].parameters(), clip)
        accuracy = float((lab_logits.argmax(1) == y_lab).float().mean())
        return {
            "loss_d": float((sup + weight * unsup).detach()),
            "loss_g": float(loss_g.detach()),
            "loss_sup": float(sup.detach()),
            "loss_unsup": float(unsup.detach()),
            "labelled_accuracy": accuracy,
        }

    def attach(self, device, wrap, autocast) -> None:
        """The engine's attach, and the classifier's average on the same device."""
        super().attach(device, wrap, autocast)
        if self.classifier_average is not None:
            self.classifier_average.shadow.to(device)

    def classifier(self) -> NoisyClassifier:
        """The classifier the run exports: D's average when `model.classifier_ema` > 0."""
        average = self.classifier_average
        return self.networks["d"] if average is None else average.shadow

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"noise": self.noise.get_state()}
        if self.classifier_average is not None:
            state["classifier_average"] = self.classifier_average.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.noise.set_state(state["noise"])
        if self.classifier_average is not None:
            if "classifier_average" not in state:
                raise CheckpointError(
                    "the checkpoint has no classifier average; resume it with "
                    "model.classifier_ema=0, as it was trained"
                )
            self.classifier_average.load_state_dict(state["classifier_average"])

    def spec(self) -> dict[str, Any]:
        """The GAN's model.json contents with the classifier and its labels."""
        m = self.cfg.model
        labels = {"per_class": m.labels_per_class, "seed": m.label_seed}
        return {**super().spec(), "classifier": {**self.classifier_spec, "labels": labels}}

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """G (its EMA when kept) and the classifier (D's average when kept) under
        `auxiliary.classifier.`."""
        weights = dict(self.sampling_network("g").state_dict())
        d = self.classifier().state_dict()
        weights.update({CLASSIFIER_PREFIX + k: v for k, v in d.items()})
        return weights, self.spec()


# --- the trained classifier on its own ------------------------------------------------------------
class SemiSupervisedClassifier:
    """The SSGAN's D as a classifier: numpy in, numpy out. Inputs are samples in the model's
    data range (digits: pixels scaled to [-1, 1], as `gankit.data.load_digits` gives them), of
    the data shape or flattened."""

    def __init__(self, net: NoisyClassifier, spec: dict[str, Any]) -> None:
        self.net = net.eval()
        self.spec = spec
        self.shape = tuple(spec["input_shape"])
        self.classes_ = np.arange(spec["num_classes"])

    def _tensor(self, X: Any) -> torch.Tensor:
        try:
            a = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise DataError(f"X must be a numeric array of samples ({exc})") from exc
        size = math.prod(self.shape)
        if a.ndim < 2 or len(a) == 0 or a[0].size != size:
            raise DataError(
                f"X must have shape [n, {size}] or [n, {', '.join(map(str, self.shape))}] with "
                f"n >= 1, got {list(a.shape)}"
            )
        if not np.isfinite(a).all():
            raise DataError("X contains NaN or infinite values; impute or drop those samples")
        return torch.from_numpy(a.reshape(len(a), size))

    @torch.no_grad()
    def predict_proba(self, X: Any) -> np.ndarray:
        """[n, K] class probabilities (softmax over the K real classes)."""
        x = self._tensor(X)
        logits = torch.cat([self.net(c)[0] for c in x.split(4096)])
        return logits.double().softmax(1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """[n] predicted classes."""
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on (X, y), as scikit-learn classifiers define it."""
        return float((self.predict(X) == np.asarray(y)).mean())


def load_classifier(path: Any) -> SemiSupervisedClassifier:
    """The classifier of an SSGAN run or model directory (hash-checked, shapes checked before
    anything is built, no pickle)."""
    from gankit.generator import check_generator_spec
    from gankit.modeldir import check_module_fits, read_model_dir, weight_shapes

    def check(directory: Any, spec: dict[str, Any]) -> None:
        check_generator_spec(directory, spec)
        cls = spec.get("classifier")
        if not isinstance(cls, dict):
            raise CheckpointError(f"{directory}: not a semi-supervised GAN (no 'classifier')")
        widths, k = cls.get("widths"), cls.get("num_classes")
        if (
            not isinstance(widths, list)
            or not 1 <= len(widths) <= MAX_LAYERS
            or not all(isinstance(w, int) and 0 < w <= MAX_WIDTH for w in [*widths, k])
        ):
            raise CheckpointError(f"{directory}/model.json: bad classifier entry {cls!r}"[:300])
        check_module_fits(
            lambda: build_classifier(cls),
            weight_shapes(directory),
            prefix=CLASSIFIER_PREFIX,
            where=f"{directory}/model.json",
        )

    tensors, spec = read_model_dir(path, GENERATOR_KINDS, check=check)
    net = build_classifier(spec["classifier"])
    n = len(CLASSIFIER_PREFIX)
    net.load_state_dict({k[n:]: v for k, v in tensors.items() if k.startswith(CLASSIFIER_PREFIX)})
    return SemiSupervisedClassifier(net, spec["classifier"])


def train_supervised(
    x: torch.Tensor,
    y: torch.Tensor,
    model_cfg: Any,
    train_cfg: Any,
    steps: int,
    seed: int = 0,
) -> SemiSupervisedClassifier:
    """The same classifier network trained on labelled samples alone (cross-entropy, the
    config's optimizer, labelled batch size and classifier EMA): the baseline SSGAN must beat."""
    from gankit.data.source import BatchSampler

    torch.manual_seed(seed)
    spec = {
        "input_shape": list(x.shape[1:]),
        "widths": list(model_cfg.d_widths),
        "num_classes": model_cfg.num_classes,
        "input_noise": model_cfg.input_noise,
        "hidden_noise": model_cfg.hidden_noise,
    }
    net = build_classifier(spec)
    init_weights(net, model_cfg.init)
    t = train_cfg
    opt = make_optimizer(t.optimizer, net.parameters(), t.lr_d, t.betas, t.momentum)
    sampler = BatchSampler(len(x), min(model_cfg.labelled_batch, len(x)), seed)
    average = EMA(net, model_cfg.classifier_ema) if model_cfg.classifier_ema > 0 else None
    for i in range(steps):
        idx = sampler.indices(i)
        update(supervised_loss(net(x[idx])[0], y[idx]), opt)
        if average is not None:
            average.update(net)
    return SemiSupervisedClassifier(net if average is None else average.shadow, spec)
