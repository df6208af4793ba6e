"""A trained generator loaded from its model directory: sampling, latent codes, interpolation."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.modeldir import (
    check_bounds,
    check_module_fits,
    read_model_dir,
    weight_shapes,
)
from gankit.nets import build_discriminator, build_generator
from gankit.registry import kind, kinds_with
from gankit.rejection import (
    DEFAULT_MIN_ACCEPTANCE,
    Estimate,
    RejectionSampler,
    discriminator_sampler,
)
from gankit.viz import to_uint8

GENERATOR_KINDS = kinds_with("generator")
MAX_SAMPLES = 1_000_000
MAX_SAMPLE_VALUES = 1 << 28  # n × values per sample in one call: 1 GiB of float32
MAX_LATENT_DIM = 1 << 16
DECODE_BATCH = 4096  # samples per generator pass in `decode`
# sanity limits on the architecture numbers, checked before anything is built
ARCHITECTURE_BOUNDS = {
    "latent_dim": (1, MAX_LATENT_DIM),
    "depth": (0, 256),
    "g_width": (1, 1 << 20),
    "d_width": (1, 1 << 20),
    "pack": (1, 64),
    "latent_categories": (0, MAX_LATENT_DIM),
    "maxout_pieces": (1, 64),
    "num_classes": (1, 1 << 20),
    "embed_dim": (1, MAX_LATENT_DIM),  # biggan
    "attention": (0, 1 << 16),  # biggan
}
MAX_CLASSES = 1 << 20
DISCRIMINATOR_PREFIX = "discriminator."  # D's weights, saved beside G's for rejection sampling
# weights of other networks a model saves beside G (InfoGAN's Q head, the SSGAN classifier):
# the generator ignores them; their model's own loader reads them
AUXILIARY_PREFIX = "auxiliary."


def normal_latent(
    n: int, dim: int, seed: int | None = None, truncation: float | None = None
) -> torch.Tensor:
    """n codes z ~ N(0, I_dim) (seeded); with `truncation` t, values beyond ±t are redrawn (the
    truncation trick). Counts are checked against the memory bound first."""
    _check_count(n, dim)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    z = torch.randn(n, dim, generator=gen)
    if truncation is not None:
        if not truncation > 0:
            raise DataError(f"truncation must be > 0, got {truncation!r}")
        outside = z.abs() > truncation
        while outside.any():
            z[outside] = torch.randn(int(outside.sum()), generator=gen)
            outside = z.abs() > truncation
    return z


class Generator:
    """Wraps the generator network with what its model.json says about it."""

    def __init__(
        self,
        module: nn.Module,
        spec: dict[str, Any],
        device: str | torch.device = "cpu",
        discriminator: nn.Module | None = None,
    ):
        self.module = module.to(device).eval()
        self.spec = spec
        self.device = torch.device(device)
        self.discriminator = None if discriminator is None else discriminator.to(device).eval()
        self._rejection: dict[tuple[float, float], RejectionSampler] = {}

    @property
    def latent_dim(self) -> int:
        return int(self.spec["latent_dim"])

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.spec["data"]["shape"])

    @property
    def is_image(self) -> bool:
        return "image" in kind(self.spec["kind"]).tags

    @property
    def num_classes(self) -> int | None:
        """K for a class-conditional generator (labels 0..K-1), None for an unconditional one."""
        k = self.spec.get("num_classes")
        return int(k) if k else None

    @property
    def class_prior(self) -> torch.Tensor | None:
        """The class shares labels are drawn from when none are given (a self-conditioned
        model's cluster proportions); None: uniform."""
        prior = self.spec.get("class_prior")
        return None if prior is None else torch.tensor(prior, dtype=torch.float64)

    @property
    def codes(self) -> dict[str, int] | None:
        """InfoGAN's latent codes `{"categorical": K, "continuous": C}` (z is [K slots whose
        argmax is the category, C codes ~ N(0, 1), noise]); None for other generators."""
        codes = self.spec.get("codes")
        if not codes:
            return None
        return {"categorical": int(codes["categorical"]), "continuous": int(codes["continuous"])}

    def with_codes(self, z: torch.Tensor, codes: dict[str, Any]) -> torch.Tensor:
        """A copy of `z` with InfoGAN's codes fixed: `codes["categorical"]` one category or one
        per row; `codes["continuous"]` C values (None keeps the drawn value) or an [n, C] array."""
        layout = self.codes
        if layout is None:
            raise DataError("this generator has no latent codes (InfoGAN only); do not pass codes")
        if not isinstance(codes, dict) or set(codes) - {"categorical", "continuous"}:
            raise DataError(
                f"codes must be a dict with 'categorical' and/or 'continuous', got {codes!r}"[:300]
            )
        k, c = layout["categorical"], layout["continuous"]
        z = z.clone()
        if codes.get("categorical") is not None:
            if not k:
                raise DataError("this generator has no categorical code")
            z[:, :k] = torch.nn.functional.one_hot(
                resolve_labels(codes["categorical"], len(z), k), k
            ).to(z.dtype)
        if codes.get("continuous") is not None:
            z[:, k : k + c] = _continuous_codes(codes["continuous"], z[:, k : k + c])
        return z

    def traversal(
        self, code: str | int, steps: int = 10, rows: int = 10, seed: int = 0, span: float = 2.0
    ) -> torch.Tensor:
        """InfoGAN latent traversal, [rows × steps] samples: each row one draw of the other
        latents; along it, `code` ("categorical": every category; j: continuous code j from
        -span to span) varies and nothing else."""
        layout = self.codes
        if layout is None:
            raise ConfigError("a code traversal needs a generator with latent codes (InfoGAN)")
        k, c = layout["categorical"], layout["continuous"]
        if code == "categorical" and k:
            steps = k
        elif isinstance(code, bool) or not isinstance(code, int) or not 0 <= code < c:
            raise DataError(f"code must be 'categorical' (K = {k}) or a continuous code 0..{c - 1}")
        z = self.sample_latent(rows, seed).repeat_interleave(steps, 0)
        if code == "categorical":
            return self.decode(self.with_codes(z, {"categorical": torch.arange(k).repeat(rows)}))
        z[:, k + code] = torch.linspace(-span, span, steps).repeat(rows)
        return self.decode(z)

    def sample_latent(
        self, n: int, seed: int | None = None, truncation: float | None = None
    ) -> torch.Tensor:
        """n latent codes z ~ N(0, I); with `truncation` t, values beyond ±t are redrawn."""
        return normal_latent(n, self.latent_dim, seed, truncation)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generated samples for latent codes `z` [n, latent_dim] (and, for a class-conditional
        generator, `labels`: one class or one per row, validated like `sample`'s)."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise DataError(f"z must have shape [n, {self.latent_dim}], got {list(z.shape)}")
        _check_count(z.shape[0], math.prod(self.output_shape))
        if self.num_classes is None:
            if labels is not None:
                raise DataError("this generator is not class-conditional; do not pass labels")
            return torch.cat(
                [self.module(c.to(self.device)).float().cpu() for c in z.split(DECODE_BATCH)]
            )
        if labels is None:
            raise DataError(
                "this generator is class-conditional: pass labels "
                f"(classes 0..{self.num_classes - 1})"
            )
        y = resolve_labels(labels, z.shape[0], self.num_classes)
        return torch.cat(
            [
                self.module(c.to(self.device), yc.to(self.device)).float().cpu()
                for c, yc in zip(z.split(DECODE_BATCH), y.split(DECODE_BATCH), strict=True)
            ]
        )

    def sample(
        self,
        n: int,
        seed: int | None = None,
        truncation: float | None = None,
        labels: int | Sequence[int] | torch.Tensor | None = None,
        rejection: bool = False,
        rejection_quantile: float = 1.0,
        min_acceptance: float = DEFAULT_MIN_ACCEPTANCE,
        on_estimate: Callable[[Estimate], None] | None = None,
        progress: bool = False,
        codes: dict[str, Any] | None = None,
    ) -> torch.Tensor:
        """n samples [n, *output_shape] in the data range.

        `rejection=True` keeps only the samples the saved discriminator judges realistic
        (discriminator rejection sampling, gankit.rejection): higher precision, at the cost of
        1/acceptance draws per sample; `rejection_quantile` < 1 caps the density ratio, and
        `min_acceptance` is the floor of acceptance below which sampling is refused rather than
        run. `on_estimate` receives the predicted cost before sampling starts; `progress` shows
        a progress bar when it is long.

        `labels` (class-conditional generators only): one class for every sample, or one per
        sample; classes must lie in 0..num_classes-1 (DataError otherwise). Without labels a
        conditional generator draws classes uniformly (a self-conditioned one by its
        `class_prior`), reproducibly for a seed.

        `codes` (InfoGAN generators only, see `with_codes`): fix the categorical code and/or the
        continuous codes, e.g. `{"categorical": 3, "continuous": [0.5, None]}`.
        """
        if codes is not None:
            if rejection:
                raise DataError("rejection sampling does not take codes")
            return self.decode(self.with_codes(self.sample_latent(n, seed, truncation), codes))
        if self.num_classes is not None and not rejection:
            _check_count(n, math.prod(self.output_shape))
            labels = resolve_labels(labels, n, self.num_classes, seed, self.class_prior)
        if rejection:
            if truncation is not None or labels is not None:
                raise DataError("rejection sampling takes neither truncation nor labels")
            _check_count(n, math.prod(self.output_shape))
            sampler = self.rejection_sampler(rejection_quantile, min_acceptance)
            return sampler.sample(n, seed, on_estimate=on_estimate, progress=progress)
        return self.decode(self.sample_latent(n, seed, truncation), labels)

    def rejection_sampler(
        self, quantile: float = 1.0, min_acceptance: float = DEFAULT_MIN_ACCEPTANCE
    ) -> RejectionSampler:
        """The discriminator rejection sampler of this model (ConfigError if it cannot have one).

        It is kept between calls with the same settings (its acceptance count, and its
        calibration for unseeded calls). A packed discriminator (PacGAN) scores each sample
        packed with context samples of G (gankit.rejection explains why that is still the
        density ratio).
        """
        if self.discriminator is None:
            raise ConfigError(
                "this model directory has no discriminator weights (pruned exports and runs "
                "saved before rejection sampling existed have none); sample from the training "
                "run's own directory, or without rejection"
            )
        if self.num_classes is not None:
            raise ConfigError(
                "rejection sampling is not available for class-conditional generators; "
                "sample without rejection"
            )
        key = (quantile, min_acceptance)
        if key not in self._rejection:
            self._rejection[key] = discriminator_sampler(
                self.module,
                self.discriminator,
                self.latent_dim,
                loss=self.spec.get("config", {}).get("objective", {}).get("loss", ""),
                pack=int(self.spec["architecture"].get("pack", 1)),
                device=self.device,
                quantile=quantile,
                min_acceptance=min_acceptance,
            )
        return self._rejection[key]

    def interpolate(
        self, steps: int = 10, seed: int | None = None, label: int | None = None
    ) -> torch.Tensor:
        """Samples along the straight line between two random latent codes (a conditional
        generator keeps one class along the line: `label`, or one drawn with the seed)."""
        ends = self.sample_latent(2, seed)
        weights = torch.linspace(0, 1, steps)[:, None]
        z = (1 - weights) * ends[0] + weights * ends[1]
        if self.num_classes is None:
            return self.decode(z, None if label is None else torch.tensor([label]))
        return self.decode(z, resolve_labels(label, 1, self.num_classes, seed).expand(steps))

    def class_grid(
        self, per_class: int = 10, seed: int | None = None, classes: Sequence[int] | None = None
    ) -> torch.Tensor:
        """One row of `per_class` samples per class (every class, or `classes`), class-major;
        column j uses the same latent code in every row, so a row varies only by its class."""
        if self.num_classes is None:
            raise ConfigError("a class grid needs a class-conditional generator (num_classes)")
        rows = list(range(self.num_classes)) if classes is None else list(classes)
        if not rows:
            raise DataError("classes: give at least one class")
        z = self.sample_latent(per_class, seed).repeat(len(rows), 1)
        labels = resolve_labels(rows, len(rows), self.num_classes).repeat_interleave(per_class)
        return self.decode(z, labels)

    @staticmethod
    def to_uint8(images: torch.Tensor) -> np.ndarray:
        """[n, C, H, W] in [-1, 1] → [n, H, W, C] uint8."""
        return to_uint8(images)


_NOT_G = (DISCRIMINATOR_PREFIX, AUXILIARY_PREFIX)


def _check_codes(where: str, codes: Any, arch: dict[str, Any]) -> None:
    """CheckpointError unless InfoGAN's code layout fits the generator's latent."""
    codes = codes if isinstance(codes, dict) else {}
    k, c = codes.get("categorical"), codes.get("continuous")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (k, c))
    if not ok or k != int(arch.get("latent_categories", 0)) or k + c >= arch["latent_dim"]:
        raise CheckpointError(
            f"{where}: codes {codes!r} do not fit the architecture (latent_categories "
            f"{arch.get('latent_categories')!r}, latent_dim {arch.get('latent_dim')!r})"
        )


def _continuous_codes(values: Any, drawn: torch.Tensor) -> torch.Tensor:
    """InfoGAN continuous codes `[n, C]` from C values (None: keep `drawn`) or an [n, C] array."""
    n, c = drawn.shape
    if isinstance(values, list | tuple) and len(values) == c and None in values:
        kept = [j for j, v in enumerate(values) if v is None]
        values = [0.0 if v is None else v for v in values]
    else:
        kept = []
    try:
        t = torch.as_tensor(values, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"continuous codes must be {c} numbers or an [n, {c}] array") from exc
    if t.shape not in ((n, c), (c,)) or not torch.isfinite(t).all():
        raise DataError(
            f"continuous codes must be {c} finite numbers or an [{n}, {c}] array, "
            f"got shape {list(t.shape)}"
        )
    t = t.expand(n, c).clone()
    t[:, kept] = drawn[:, kept]
    return t


def resolve_labels(
    labels: Any,
    n: int,
    num_classes: int,
    seed: int | None = None,
    prior: torch.Tensor | None = None,
) -> torch.Tensor:
    """The `[n]` int64 classes of a conditional draw, checked (DataError names the problem).

    `labels` is one class (broadcast to every sample), a sequence or 1-d tensor of `n`
    classes, or None: classes drawn uniformly — or by `prior` (the class shares of a
    self-conditioned model) — from `seed` when given (the service draws them the same way)."""
    if labels is None and prior is not None:
        gen = None if seed is None else torch.Generator().manual_seed(seed ^ 0x5EED)
        return torch.multinomial(prior.double(), n, replacement=True, generator=gen)
    if labels is None:
        if seed is None:
            return torch.randint(0, num_classes, (n,))
        gen = torch.Generator().manual_seed(seed ^ 0x5EED)
        return torch.randint(0, num_classes, (n,), generator=gen)
    if isinstance(labels, bool | str | bytes):
        raise DataError(f"labels must be an integer class or a list of them, got {labels!r}")
    try:
        y = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"labels must be an integer class or a list of them, got {labels!r}"
        ) from exc
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex() or y.dim() > 1:
        raise DataError(
            f"labels must be an integer class or a flat list of integers, got {labels!r}"[:300]
        )
    if y.dim() == 0:
        y = y.expand(n)
    elif len(y) != n:
        raise DataError(f"expected one label or {n} labels, got {len(y)}")
    y = y.to(torch.int64)
    bad = y[(y < 0) | (y >= num_classes)]
    if len(bad):
        raise DataError(f"labels must be classes in 0..{num_classes - 1}, got {bad[:5].tolist()}")
    return y.contiguous()


def check_class_prior(where: str, prior: Any, num_classes: int | None) -> None:
    """CheckpointError unless model.json's `class_prior` is K non-negative numbers summing to 1."""
    ok = (
        num_classes is not None
        and isinstance(prior, list)
        and len(prior) == num_classes
        and all(isinstance(p, int | float) and not isinstance(p, bool) for p in prior)
    )
    if ok:
        t = torch.tensor(prior, dtype=torch.float64)
        ok = bool(torch.isfinite(t).all() and (t >= 0).all() and abs(float(t.sum()) - 1) < 1e-6)
    if not ok:
        raise CheckpointError(
            f"{where}: class_prior must be num_classes ({num_classes!r}) non-negative numbers "
            "summing to 1"
        )


def _check_count(n: object, values_per_sample: int = 1) -> None:
    """DataError unless `n` is a sample count this process can afford to hold."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= MAX_SAMPLES:
        raise DataError(f"n must be an integer in 1..{MAX_SAMPLES}, got {n!r}")
    if n * values_per_sample > MAX_SAMPLE_VALUES:
        raise DataError(
            f"n = {n} samples of {values_per_sample} values each is more than one call may hold "
            f"({MAX_SAMPLE_VALUES} values); sample in smaller batches"
        )


def check_generator_spec(path: str | os.PathLike, spec: dict[str, Any]) -> None:
    """CheckpointError unless model.json's numbers fit the weights, allocating nothing.

    Sanity bounds first, then the generator (and the discriminator, if saved) are built on the
    meta device from the spec and compared with the safetensors header, and a meta forward pass
    checks `latent_dim` and `data.shape` against the network.
    """
    where = f"{path}/model.json"
    arch, data = spec.get("architecture"), spec.get("data")
    if not isinstance(arch, dict) or not isinstance(data, dict):
        raise CheckpointError(f"{where}: 'architecture' and 'data' must be objects")
    check_bounds(where, spec, {"latent_dim": (1, MAX_LATENT_DIM), "num_classes": (1, MAX_CLASSES)})
    check_bounds(f"{where} architecture", arch, ARCHITECTURE_BOUNDS)
    if spec.get("codes"):
        _check_codes(where, spec["codes"], arch)
    classes = spec.get("num_classes") or None
    if classes != (arch.get("num_classes") or None):
        raise CheckpointError(
            f"{where}: num_classes is {classes!r} but the architecture says "
            f"{arch.get('num_classes')!r}"
        )
    if "class_prior" in spec:  # a self-conditioned model's cluster shares
        check_class_prior(where, spec["class_prior"], classes)
    labels = None if classes is None else torch.zeros(2, dtype=torch.long, device="meta")
    conditional = () if labels is None else (labels,)
    shape = data.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 4
        or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 16 for d in shape
        )
        or math.prod(shape) > MAX_SAMPLE_VALUES
    ):
        raise CheckpointError(f"{where}: data.shape is {shape!r}, expected 1-4 positive sizes")
    shapes = weight_shapes(path)

    def probe_generator(module: nn.Module) -> None:
        out = module.eval()(torch.empty(2, spec["latent_dim"], device="meta"), *conditional)
        if list(out.shape) != [2, *shape]:
            raise CheckpointError(
                f"{where}: the network makes samples of shape {list(out.shape)[1:]}, "
                f"data.shape says {shape}"
            )

    check_module_fits(
        lambda: build_generator(arch),
        {k: v for k, v in shapes.items() if not k.startswith(_NOT_G)},
        where=where,
        probe=probe_generator,
    )
    if any(k.startswith(DISCRIMINATOR_PREFIX) for k in shapes):
        pack = int(arch.get("pack", 1))

        def probe_discriminator(module: nn.Module) -> None:
            scores = module.eval()(torch.empty(2 * pack, *shape, device="meta"), *conditional)
            if classes is not None:
                scores = scores[0]
            if scores.numel() != 2:
                raise CheckpointError(
                    f"{where}: the discriminator gives {scores.numel()} scores for 2 packs"
                )

        check_module_fits(
            lambda: build_discriminator(arch),
            shapes,
            prefix=DISCRIMINATOR_PREFIX,
            where=where,
            probe=probe_discriminator,
        )


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> Generator:
    """Load a generator from a run or model directory; checks the SHA-256 of the weights and of
    the spec, and the spec against the weights' shapes before building anything; never
    unpickles."""
    tensors, spec = read_model_dir(path, GENERATOR_KINDS, check=check_generator_spec)
    n = len(DISCRIMINATOR_PREFIX)
    d_weights = {k[n:]: v for k, v in tensors.items() if k.startswith(DISCRIMINATOR_PREFIX)}
    g_weights = {k: v for k, v in tensors.items() if not k.startswith(_NOT_G)}
    discriminator = None
    try:
        module = build_generator(spec["architecture"])
        module.load_state_dict(g_weights)
        if d_weights:
            discriminator = build_discriminator(spec["architecture"])
            discriminator.load_state_dict(d_weights)
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{path}: weights do not fit the architecture in model.json ({exc})"
        ) from exc
    return Generator(module, spec, device, discriminator)
