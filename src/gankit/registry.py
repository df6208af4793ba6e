"""The one table of model families and model kinds.

* A **family** is what a config's `model.family` names: its config dataclass and the builder
  that turns a whole config into (model, batch provider) for the engine.
* A **kind** is what a model directory's `model.json` says it holds: how to load it, how the
  service serves it (adapter and request schemas), how it is exported.

`gankit train`, `load_*`, `serve` and `export` look things up here; no other module compares
kind strings. Entries name their code by import path, so importing the registry is cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gankit.errors import CheckpointError, ConfigError


def _resolve(path: str) -> Any:
    """`module:attr` or `module:Class.method` -> the object."""
    module, _, name = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Family:
    """A `model.family`: the config section it reads and the builder of its model."""

    name: str
    config: str  # "module:Class" of the model section's dataclass
    builder: str  # "module:function(cfg) -> (GenerativeModel, BatchProvider)"
    description: str = ""

    def config_class(self) -> type:
        return _resolve(self.config)

    def build(self, cfg: Any) -> tuple[Any, Any]:
        return _resolve(self.builder)(cfg)


@dataclass(frozen=True)
class Kind:
    """A `model.json` kind: loader, serving adapter, request schemas, exporter."""

    name: str
    loader: str  # "module:function(directory) -> loaded model"
    serve: str | None = None  # "module:function(name, directory, ...) -> ServedModel"
    requests: tuple[str, ...] = ()  # request schemas (serve) this kind answers
    exporter: str | None = None  # "module:function(directory, out, ...)"
    tags: frozenset[str] = field(default_factory=frozenset)  # "generator", "tabular", "image"

    def load(self, directory: Any) -> Any:
        return _resolve(self.loader)(directory)

    def export(self, directory: Any, out: Any = None, **options: Any) -> dict[str, Any]:
        if self.exporter is None:
            raise CheckpointError(f"{directory}: a {self.name!r} model has no ONNX export")
        return _resolve(self.exporter)(directory, out, **options)

    def serving(self) -> Callable[..., Any]:
        if self.serve is None:
            raise ConfigError(f"model kind {self.name!r} cannot be served")
        return _resolve(self.serve)


_GAN = "gankit.models.gan:build"
FAMILIES: dict[str, Family] = {
    name: Family(name, f"gankit.config:{config}", _GAN, description)
    for name, config, description in (
        ("dcgan", "DCGANModelConfig", "DCGAN (Radford et al. 2016), 8–64 px images"),
        ("mlp", "MLPModelConfig", "MLP generator and discriminator: toy data, small images"),
        (
            "goodfellow",
            "GoodfellowModelConfig",
            "ReLU-MLP generator, maxout discriminator (Goodfellow et al. 2014)",
        ),
        ("resnet", "ResNetModelConfig", "SNGAN ResNet G and D, 32 px (Miyato et al. 2018)"),
    )
}

_CONDITIONAL = "gankit.models.conditional:build"
FAMILIES.update(
    {
        "cdcgan": Family(
            "cdcgan",
            "gankit.config:ConditionalModelConfig",
            _CONDITIONAL,
            "class-conditional DCGAN: conditional BN in G, projection or ACGAN D",
        ),
        "cmlp": Family(
            "cmlp",
            "gankit.config:ConditionalMLPModelConfig",
            _CONDITIONAL,
            "class-conditional MLP GAN: conditional BN in G, projection or ACGAN D",
        ),
    }
)

FAMILIES["biggan"] = Family(
    "biggan",
    "gankit.config:BigGANModelConfig",
    "gankit.models.biggan:build",
    "BigGAN (Brock et al. 2019), small: hierarchical z, shared embedding, SN, attention",
)

FAMILIES["vae"] = Family(
    "vae", "gankit.config:VAEModelConfig", "gankit.models.vae:build", "VAE (Kingma & Welling 2014)"
)
FAMILIES["bigan"] = Family(
    "bigan",
    "gankit.config:BiGANModelConfig",
    "gankit.models.bigan:build",
    "BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017): encoder, generator, joint D",
)
FAMILIES["vaegan"] = Family(
    "vaegan",
    "gankit.config:VAEGANModelConfig",
    "gankit.models.vaegan:build",
    "VAE-GAN (Larsen et al. 2016): the VAE decoder as G, reconstruction in D's features",
)
FAMILIES["infogan"] = Family(
    "infogan",
    "gankit.config:InfoGANModelConfig",
    "gankit.models.infogan:build",
    "InfoGAN (Chen et al. 2016): latent codes, a Q head on D, the mutual-information bound",
)
FAMILIES["ssgan"] = Family(
    "ssgan",
    "gankit.config:SSGANModelConfig",
    "gankit.models.ssgan:build",
    "semi-supervised GAN (Salimans et al. 2016): K-logit D, feature matching, few labels",
)

IMAGE_GENERATOR, TOY_GENERATOR = "image-generator", "toy-generator"
IMPUTER, TABULAR_SYNTH = "imputer", "tabular-synth"
VAE_KIND, TABULAR_VAE = "vae", "tabular-vae"
BIGAN_KIND = "bigan"

_GEN_LOADER = "gankit.generator:load_generator"
_GEN_SERVE = "gankit.serve.models:serve_generator"
_GEN_REQUESTS = ("GenerateRequest", "LatentRequest", "DecodeRequest")
KINDS: dict[str, Kind] = {
    IMAGE_GENERATOR: Kind(
        IMAGE_GENERATOR,
        _GEN_LOADER,
        _GEN_SERVE,
        _GEN_REQUESTS,
        "gankit.export:export_generator",
        frozenset({"generator", "image"}),
    ),
    TOY_GENERATOR: Kind(
        TOY_GENERATOR,
        _GEN_LOADER,
        _GEN_SERVE,
        _GEN_REQUESTS,
        "gankit.export:export_generator",
        frozenset({"generator"}),
    ),
    IMPUTER: Kind(
        IMPUTER,
        "gankit.tabular.imputer:GANImputer.load",
        "gankit.serve.models:serve_imputer",
        ("ImputeRequest",),
        "gankit.export:export_imputer",
        frozenset({"tabular", "imputation"}),
    ),
    TABULAR_SYNTH: Kind(
        TABULAR_SYNTH,
        "gankit.tabular.synthesizer:TabularGAN.load",
        "gankit.serve.models:serve_synth",
        ("SynthesizeRequest",),
        None,
        frozenset({"tabular", "synthesis"}),
    ),
    VAE_KIND: Kind(
        VAE_KIND,
        "gankit.models.vae:load_vae",
        "gankit.serve.models:serve_vae",
        (*_GEN_REQUESTS, "EncodeRequest"),
        "gankit.models.vae:export_vae",
        frozenset({"image", "encoder"}),
    ),
    TABULAR_VAE: Kind(
        TABULAR_VAE,
        "gankit.tabular.tvae:TabularVAE.load",
        "gankit.serve.models:serve_tvae",
        ("SynthesizeRequest",),
        None,
        frozenset({"tabular", "synthesis"}),
    ),
}
KINDS[BIGAN_KIND] = Kind(
    BIGAN_KIND,
    "gankit.models.bigan:load_bigan",
    "gankit.serve.models:serve_bigan",
    (*_GEN_REQUESTS, "EncodeRequest"),
    "gankit.export:export_bigan",
    frozenset({"image", "encoder"}),
)

# image translation (CycleGAN) and progressive growing (ProGAN)
CYCLEGAN_KIND, PROGAN_KIND = "cyclegan", "progan"
FAMILIES["cyclegan"] = Family(
    "cyclegan",
    "gankit.config:CycleGANModelConfig",
    "gankit.models.cyclegan:build",
    "CycleGAN (Zhu et al. 2017): unpaired translation A <-> B, cycle and identity losses",
)
FAMILIES["progan"] = Family(
    "progan",
    "gankit.config:ProGANModelConfig",
    "gankit.models.progan:build",
    "ProGAN (Karras et al. 2018): progressive growing, equalised LR, pixel norm",
)
KINDS[CYCLEGAN_KIND] = Kind(
    CYCLEGAN_KIND,
    "gankit.models.cyclegan:load_cyclegan",
    "gankit.serve.models:serve_cyclegan",
    ("TranslateRequest",),
    "gankit.export:export_cyclegan",
    tags=frozenset({"image", "translation"}),
)
KINDS[PROGAN_KIND] = Kind(
    PROGAN_KIND,
    "gankit.models.progan:load_progan",
    "gankit.models.progan:serve_progan",
    _GEN_REQUESTS,
    "gankit.export:export_progan",
    tags=frozenset({"generator", "image"}),
)

# MIWAE (Mattei & Frellsen 2019), the second imputer: loads and saves; not served or exported
# (no tags, so the service's tabular and imputation paths, written for GANImputer, skip it)
MIWAE_KIND = "miwae-imputer"
KINDS[MIWAE_KIND] = Kind(MIWAE_KIND, "gankit.tabular.miwae:MIWAEImputer.load")


def family(name: str) -> Family:
    """The family a config's `model.family` names."""
    if name not in FAMILIES:
        import difflib

        close = difflib.get_close_matches(name, FAMILIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"model.family = {name!r} is not allowed{hint}; choose one of {', '.join(FAMILIES)}"
        )
    return FAMILIES[name]


def kind(name: Any, where: Any = "model.json") -> Kind:
    """The kind a model directory's `model.json` names."""
    if not isinstance(name, str) or name not in KINDS:
        raise CheckpointError(
            f"{where}: unknown model kind {name!r}; this gankit knows {', '.join(KINDS)}"
        )
    return KINDS[name]


def kinds_with(tag: str) -> tuple[str, ...]:
    """Every kind carrying `tag` ("generator", "tabular", ...)."""
    return tuple(k for k, v in KINDS.items() if tag in v.tags)


SAMPLER_TAGS = frozenset({"generator", "encoder"})  # GAN generators and VAEs draw samples


def load_sampler(directory: Any) -> Any:
    """Load a model directory that draws images or points (a GAN generator or a VAE): what
    `gankit sample`, `eval` and `report` read. CheckpointError for any other kind."""
    from gankit.modeldir import verify_model_dir

    entry = kind(verify_model_dir(directory).get("kind"), directory)
    if not entry.tags & SAMPLER_TAGS:
        raise CheckpointError(
            f"{directory}: a {entry.name!r} model draws no images or points; expected one of "
            f"{', '.join(k for k, v in KINDS.items() if v.tags & SAMPLER_TAGS)}"
        )
    return entry.load(directory)


def load_encoder(directory: Any) -> Any:
    """Load a model directory with an encoder (a kind tagged "encoder": VAE, VAE-GAN, BiGAN):
    what `gankit encode` reads. CheckpointError for any other kind."""
    from gankit.modeldir import verify_model_dir

    entry = kind(verify_model_dir(directory).get("kind"), directory)
    if "encoder" not in entry.tags:
        raise CheckpointError(
            f"{directory}: a {entry.name!r} model has no encoder; `gankit encode` takes a model "
            f"of kind {', '.join(kinds_with('encoder'))}"
        )
    return entry.load(directory)


def load(directory: Any) -> Any:
    """Load any model directory with the loader of its kind (hash-checked, no pickle)."""
    from gankit.modeldir import verify_model_dir

    spec = verify_model_dir(directory)
    return kind(spec.get("kind"), directory).load(directory)
