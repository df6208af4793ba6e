"""Export generators to ONNX, quantize them to int8, prune them by magnitude.

`export_model(dir)` writes `model.onnx` (dynamic batch; input `z`, plus int64 `labels` for a
class-conditional generator; output `samples`) beside the weights, checks it against eager
PyTorch (max abs difference <= 1e-4 or it refuses), and records the file's SHA-256 in
`model.json` so `gankit serve --runtime onnx` can verify it like the weights. `quantize=True`
adds `model.int8.onnx` (ONNX Runtime dynamic int8 quantization: weights int8, activations
quantized on the fly). `prune=a` zeroes the share `a` of generator weights with
the smallest magnitude (`torch.nn.utils.prune`, global L1) before export; it needs `out` so the
original model is kept. Needs the `export` extra (onnx, onnxscript, onnxruntime).

Other kinds (the registry names each kind's exporter): ProGAN (its generator at the saved stage,
`export_progan`), CycleGAN (one file per direction, `export_cyclegan`), BiGAN (generator and
encoder, `export_bigan`), VAE (`gankit.models.vae.export_vae`) and the GANImputer
(`export_imputer`); the tabular synthesizers have none.
"""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gankit.errors import CheckpointError, ConfigError, require
from gankit.modeldir import (
    SPEC_FILE,
    WEIGHTS_FILE,
    sha256_file,
    verify_model_dir,
    write_model_dir,
    write_spec,
)

PARITY_TOL = 1e-4
OPSET = 18
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"


def export_onnx(
    module: nn.Module,
    latent_dim: int,
    path: str | Path,
    exporter: str = "dynamo",
    num_classes: int | None = None,
) -> Path:
    """Write `module` (z `[n, latent_dim]` -> samples) as ONNX with a dynamic batch dimension.

    A class-conditional generator (`num_classes` set) takes a second input, `labels` `[n]`
    int64. `exporter="dynamo"` is torch.export-based (the default since torch 2.9);
    `"torchscript"` is the legacy exporter, faster to run but deprecated.
    """
    require("onnx", "export")
    example = _example_inputs(2, latent_dim, num_classes)
    return _write_onnx(
        _baked(module), example, Path(path), _input_names(num_classes), "samples", exporter
    )


def _baked(module: nn.Module) -> nn.Module:
    """`module` in eval mode; when it has parametrized weights (spectral norm: BigGAN's G), an
    eval-mode copy with them stored as plain weights (fixed in eval mode; ONNX has no operator
    for the parametrization's vdot)."""
    from torch.nn.utils import parametrize

    if not any(parametrize.is_parametrized(m) for m in module.modules()):
        return module.eval()
    copy = deepcopy(module).eval()
    for m in list(copy.modules()):
        if parametrize.is_parametrized(m):
            with torch.no_grad():
                values = {name: getattr(m, name).clone() for name in m.parametrizations}
            # not remove_parametrizations: it edits the parametrized class, which the copy shares
            m.__class__ = m.__class__.__bases__[0]
            del m._modules["parametrizations"]
            for name, value in values.items():
                m.register_parameter(name, nn.Parameter(value))
    return copy


def _input_names(num_classes: int | None) -> tuple[str, ...]:
    return ("z",) if num_classes is None else ("z", "labels")


def _example_inputs(
    n: int, latent_dim: int, num_classes: int | None, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Seeded noise (and, for a conditional generator, classes in turn) for export and parity."""
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))
    if num_classes is None:
        return (z,)
    return z, torch.arange(n, dtype=torch.int64) % num_classes


def _write_onnx(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: Path,
    inputs: tuple[str, ...],
    output: str,
    exporter: str,
) -> Path:
    """Export atomically (temp file + rename), batch dimension dynamic on every input/output."""
    kwargs: dict[str, Any] = {
        "input_names": list(inputs),
        "output_names": [output],
        "opset_version": OPSET,
    }
    if exporter == "dynamo":
        require("onnxscript", "export")
        batch = torch.export.Dim("batch", min=1, max=65536)
        kwargs.update(
            dynamo=True,
            dynamic_shapes={name: {0: batch} for name in inputs},
            external_data=False,
            verbose=False,
        )
    elif exporter == "torchscript":
        axes = {name: {0: "batch"} for name in (*inputs, output)}
        kwargs.update(dynamo=False, dynamic_axes=axes)
    else:
        raise ConfigError(f"exporter must be 'dynamo' or 'torchscript', got {exporter!r}")
    tmp = path.with_name(f".{path.name}.tmp")
    with warnings.catch_warnings(), _quiet_torch_onnx():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(tmp), **kwargs)
    tmp.replace(path)
    return path


class _quiet_torch_onnx:
    """Silence the exporter's progress and torchvision-registration log lines."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("torch.onnx")
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


def ort_session(path: str | Path, threads: int = 1) -> Any:
    """An ONNX Runtime CPU session with `threads` intra-op threads."""
    ort = require("onnxruntime", "export")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity(
    module: nn.Module,
    path: str | Path,
    latent_dim: int,
    n: int = 16,
    seed: int = 0,
    num_classes: int | None = None,
) -> float:
    """Max abs difference between ONNX Runtime and eager PyTorch on `n` seeded latents (and
    labels cycling through the classes, for a conditional generator)."""
    inputs = _example_inputs(n, latent_dim, num_classes, seed)
    with torch.inference_mode():
        expected = module.eval()(*inputs).float().numpy()
    feed = {name: t.numpy() for name, t in zip(_input_names(num_classes), inputs, strict=True)}
    got = ort_session(path).run(None, feed)[0]
    return float(np.abs(got - expected).max())


def quantize_int8(src: str | Path, dst: str | Path) -> Path:
    """ONNX Runtime dynamic int8 quantization of `src` into `dst`.

    The dynamo exporter stores intermediate shapes (`value_info`) that ORT's quantizer's shape
    inference rejects; they are dropped first (ORT re-infers them).
    """
    onnx = require("onnx", "export")
    quantization = require("onnxruntime.quantization", "export")
    model = onnx.load(str(src))
    del model.graph.value_info[:]
    plain = Path(dst).with_name(f".{Path(dst).name}.plain.onnx")
    onnx.save(model, str(plain))
    try:
        quantization.quantize_dynamic(
            str(plain), str(dst), weight_type=quantization.QuantType.QInt8
        )
    finally:
        plain.unlink(missing_ok=True)
    return Path(dst)


def prune_module(module: nn.Module, amount: float) -> nn.Module:
    """Zero the share `amount` of conv/linear weights with the smallest |w| (global L1)."""
    from torch.nn.utils import prune

    if not 0.0 < amount < 1.0:
        raise ConfigError(f"prune amount must be in (0, 1), got {amount}")
    targets = [
        (m, "weight")
        for m in module.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
    ]
    if not targets:
        raise ConfigError("nothing to prune: the model has no conv or linear layers")
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
    for layer, name in targets:
        prune.remove(layer, name)
    return module


def sparsity(module: nn.Module) -> float:
    """Share of exactly-zero weights over conv/linear layers."""
    weights = [
        m.weight
        for m in module.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
    ]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / max(total, 1))


def export_model(
    model_dir: str | Path,
    out: str | Path | None = None,
    quantize: bool = False,
    prune: float = 0.0,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export a model directory to ONNX (checked for parity) and record it in model.json.

    The model kind's exporter comes from the registry. Returns what was written: files, sizes
    in bytes, parity error, sparsity.
    """
    from gankit.registry import kind

    src = Path(model_dir)
    spec = verify_model_dir(src)
    entry = kind(spec.get("kind"), src)
    if entry.exporter is None:
        raise CheckpointError(f"{src}: a {entry.name!r} model has no ONNX export")
    return entry.export(src, out, quantize=quantize, prune=prune, exporter=exporter)


def export_generator(
    model_dir: str | Path,
    out: str | Path | None = None,
    quantize: bool = False,
    prune: float = 0.0,
    exporter: str = "dynamo",
    loader: Any = None,
) -> dict[str, Any]:
    """Export a generator (image or toy) to ONNX; `prune` needs `out` (the original is kept).
    `loader` (directory -> `gankit.generator.Generator`) reads kinds other than the plain
    generators (ProGAN)."""
    import gankit

    src = Path(model_dir)
    spec = verify_model_dir(src)
    if prune and out is None:
        raise ConfigError(
            "--prune changes the weights; give --out DIR so the original model is kept"
        )
    dst = Path(out) if out is not None else src
    generator = (loader or gankit.load_generator)(src)
    module = generator.module
    report: dict[str, Any] = {"model_dir": str(dst)}
    if prune:
        prune_module(module, prune)
        report["sparsity"] = round(sparsity(module), 4)
    if dst != src:
        spec = _write_copy(src, dst, spec, module, prune)
    start = time.perf_counter()
    classes = generator.num_classes
    onnx_path = export_onnx(module, generator.latent_dim, dst / ONNX_FILE, exporter, classes)
    report["export_s"] = round(time.perf_counter() - start, 2)
    error = _checked_parity(module, onnx_path, generator.latent_dim, classes)
    report["parity_max_abs"] = error
    spec["onnx"] = _entry(onnx_path, exporter, error, _input_names(classes))
    report["onnx"] = str(onnx_path)
    report["onnx_bytes"] = onnx_path.stat().st_size
    if quantize:
        int8 = quantize_int8(onnx_path, dst / INT8_FILE)
        spec["onnx_int8"] = _entry(
            int8,
            "onnxruntime.quantize_dynamic(QInt8)",
            parity(module, int8, generator.latent_dim, num_classes=classes),
            _input_names(classes),
        )
        report["onnx_int8"] = str(int8)
        report["onnx_int8_bytes"] = int8.stat().st_size
        report["int8_max_abs"] = spec["onnx_int8"]["parity_max_abs"]
    write_spec(dst, spec)  # re-sealed: spec_sha256 covers the new entry
    return report


def _write_copy(
    src: Path, dst: Path, spec: dict[str, Any], module: nn.Module | None, prune: float
) -> dict[str, Any]:
    """Put the model in `dst` (pruned weights with a clean spec, or a plain copy); its spec."""
    dst.mkdir(parents=True, exist_ok=True)
    if prune:
        clean = {
            k: v
            for k, v in spec.items()
            if k not in ("format", "weights_sha256", "spec_sha256", "onnx", "onnx_int8")
        }
        clean["pruned"] = {"method": "global L1 unstructured", "amount": prune}
        write_model_dir(dst, module.state_dict(), clean)
    else:
        shutil.copyfile(src / WEIGHTS_FILE, dst / WEIGHTS_FILE)
        shutil.copyfile(src / SPEC_FILE, dst / SPEC_FILE)
    return verify_model_dir(dst)


def _checked_parity(
    module: nn.Module, onnx_path: Path, latent_dim: int, num_classes: int | None = None
) -> float:
    """The ONNX-vs-PyTorch max abs error; over PARITY_TOL the file is deleted and refused."""
    error = parity(module, onnx_path, latent_dim, num_classes=num_classes)
    if not error <= PARITY_TOL:
        onnx_path.unlink(missing_ok=True)
        raise CheckpointError(
            f"{onnx_path}: ONNX output differs from PyTorch by {error:.2e} > {PARITY_TOL}"
        )
    return error


def _entry(
    path: Path,
    exporter: str,
    error: float,
    inputs: tuple[str, ...] = ("z",),
    output: str = "samples",
) -> dict[str, Any]:
    return {
        "file": path.name,
        "sha256": sha256_file(path),
        "opset": OPSET,
        "exporter": exporter,
        "inputs": list(inputs),
        "outputs": [output],
        "parity_max_abs": error,
    }


# ------------------------------------------------------------- ProGAN, BiGAN, CycleGAN

CYCLEGAN_FILES = {"a2b": "model.a2b.onnx", "b2a": "model.b2a.onnx"}
ENCODER_FILE = "model.encoder.onnx"


def export_progan(
    model_dir: str | Path,
    out: str | Path | None = None,
    quantize: bool = False,
    prune: float = 0.0,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export a ProGAN's generator at its saved stage and fade-in alpha (z -> images at the
    final resolution, what `load_progan` samples with) as `model.onnx`, checked for parity.
    No `prune`: the saved weights are G's blocks, the exported module wraps them."""
    if prune:
        raise ConfigError("--prune is not available for a ProGAN; export it without --prune")
    from gankit.models.progan import load_progan

    return export_generator(model_dir, out, quantize, 0.0, exporter, loader=load_progan)


def _copy_dir(src: Path, out: str | Path | None) -> tuple[Path, dict[str, Any]]:
    """The directory to export into (`out`, a verified copy of `src`, or `src`) and its spec."""
    spec = verify_model_dir(src)
    dst = Path(out) if out is not None else src
    if dst != src:
        spec = _write_copy(src, dst, spec, None, 0.0)
    return dst, spec


def _checked_inputs_parity(
    module: nn.Module, path: Path, inputs: tuple[torch.Tensor, ...], names: tuple[str, ...]
) -> float:
    """Max abs ONNX-vs-PyTorch error on `inputs`; over PARITY_TOL the file is deleted and
    the export refused."""
    with torch.inference_mode():
        expected = module.eval()(*inputs).float().numpy()
    feed = {name: t.numpy() for name, t in zip(names, inputs, strict=True)}
    error = float(np.abs(ort_session(path).run(None, feed)[0] - expected).max())
    if not error <= PARITY_TOL:
        path.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: ONNX output differs from PyTorch by {error:.2e}")
    return error


def _images(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """n seeded inputs in [-1, 1] (pixels of an image model; points of a toy one are as good)."""
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def export_cyclegan(
    model_dir: str | Path,
    out: str | Path | None = None,
    quantize: bool = False,
    prune: float = 0.0,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export both CycleGAN generators, `model.a2b.onnx` (G: A -> B) and `model.b2a.onnx`
    (F: B -> A), input `x` [n, C, H, W] in [-1, 1], output `translated`; each checked for
    parity on seeded images and recorded in model.json as `onnx_a2b` / `onnx_b2a`."""
    if prune or quantize:
        raise ConfigError("CycleGAN export supports neither --prune nor --quantize")
    from gankit.models.cyclegan import DIRECTIONS, load_cyclegan

    dst, spec = _copy_dir(Path(model_dir), out)
    model = load_cyclegan(dst)
    report: dict[str, Any] = {"model_dir": str(dst)}
    for direction, name in CYCLEGAN_FILES.items():
        net = _baked(model.nets[DIRECTIONS[direction]])
        path = _write_onnx(
            net, (_images(2, model.shape, 0),), dst / name, ("x",), "translated", exporter
        )
        error = _checked_inputs_parity(net, path, (_images(16, model.shape, 1),), ("x",))
        spec[f"onnx_{direction}"] = _entry(path, exporter, error, ("x",), "translated")
        report.update({f"onnx_{direction}": str(path), f"parity_max_abs_{direction}": error})
    report["parity_max_abs"] = max(report["parity_max_abs_a2b"], report["parity_max_abs_b2a"])
    write_spec(dst, spec)  # re-sealed: spec_sha256 covers the new entries
    return report


class _EncoderMean(nn.Module):
    """x -> the encoder's mean code mu(x): a BiGAN's deterministic code (`encode`)."""

    def __init__(self, enc: nn.Module) -> None:
        super().__init__()
        self.enc = enc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(x)[0]


def export_bigan(
    model_dir: str | Path,
    out: str | Path | None = None,
    quantize: bool = False,
    prune: float = 0.0,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export a BiGAN: its generator (z -> samples, as a VAE's decoder) as `model.onnx` and its
    encoder (x -> mu(x)) as `model.encoder.onnx` (input `x`, output `z`), each checked for
    parity and recorded in model.json (`onnx`, `onnx_encoder`); `quantize` adds the int8
    generator. No `prune`: encoder and generator share the weights file."""
    if prune:
        raise ConfigError("--prune is not available for a BiGAN (its encoder shares the file)")
    from gankit.models.bigan import load_bigan
    from gankit.models.vae import DecoderMean

    dst, spec = _copy_dir(Path(model_dir), out)
    bigan = load_bigan(dst)
    g, latent = DecoderMean(bigan).eval(), bigan.latent_dim
    path = export_onnx(g, latent, dst / ONNX_FILE, exporter)
    error = _checked_parity(g, path, latent)
    spec["onnx"] = _entry(path, exporter, error)
    report: dict[str, Any] = {"model_dir": str(dst), "onnx": str(path), "parity_max_abs": error}
    enc, shape = _EncoderMean(bigan.enc).eval(), tuple(bigan.output_shape)
    enc_path = _write_onnx(enc, (_images(2, shape, 0),), dst / ENCODER_FILE, ("x",), "z", exporter)
    enc_error = _checked_inputs_parity(enc, enc_path, (_images(16, shape, 1),), ("x",))
    spec["onnx_encoder"] = _entry(enc_path, exporter, enc_error, ("x",), "z")
    report.update(onnx_encoder=str(enc_path), encoder_parity_max_abs=enc_error)
    if quantize:
        int8 = quantize_int8(path, dst / INT8_FILE)
        spec["onnx_int8"] = _entry(
            int8, "onnxruntime.quantize_dynamic(QInt8)", parity(g, int8, latent)
        )
        report.update(onnx_int8=str(int8), int8_max_abs=spec["onnx_int8"]["parity_max_abs"])
    write_spec(dst, spec)  # re-sealed: spec_sha256 covers the new entries
    return report


# --------------------------------------------------------------------------- imputers

IMPUTER_INPUTS = ("fill", "mask", "noise")


class OrtRefiner:
    """Stands in for a GANImputer's generator network: the same call, run by ONNX Runtime."""

    def __init__(self, path: str | Path, threads: int = 1):
        self.session = ort_session(path, threads)

    def __call__(self, fill: torch.Tensor, mask: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        feed = {
            name: t.detach().float().numpy()
            for name, t in zip(IMPUTER_INPUTS, (fill, mask, noise), strict=True)
        }
        return torch.from_numpy(self.session.run(None, feed)[0])


def _imputer_inputs(width: int, n: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    fill = torch.rand(n, width, generator=gen)
    mask = (torch.rand(n, width, generator=gen) < 0.7).float()
    noise = torch.rand(n, width, generator=gen) - 0.5
    return fill, mask, noise


def export_imputer(
    model_dir: str | Path,
    out: str | Path | None = None,
    quantize: bool = False,
    prune: float = 0.0,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Export a GANImputer's generator network (fill, mask, noise -> completed row) to ONNX.

    The Gaussian conditioning and the encoding stay in NumPy/torch; only the network runs in
    ONNX Runtime (`OrtRefiner`). Refused unless ONNX Runtime matches PyTorch within 1e-4 both on
    the network and on a whole `transform` of rows drawn inside the schema's ranges.
    """
    if prune or quantize:
        raise ConfigError("imputer export supports neither --prune nor --quantize")
    require("onnx", "export")
    from gankit.tabular import GANImputer

    src = Path(model_dir)
    dst = Path(out) if out is not None else src
    if dst != src:
        dst.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS_FILE, SPEC_FILE):
            shutil.copyfile(src / name, dst / name)
    imputer = GANImputer.load(dst)
    network = imputer.generator_.eval()
    width = int(network.net[0].in_features) // 3  # type: ignore[arg-type]  # [fill, mask, noise]
    example = _imputer_inputs(width, 4, 0)
    path = _write_onnx(network, example, dst / ONNX_FILE, IMPUTER_INPUTS, "completed", exporter)
    inputs = _imputer_inputs(width, 64, 1)
    with torch.inference_mode():
        expected = network(*inputs)
    error = float((OrtRefiner(path)(*inputs) - expected).abs().max())
    error = max(error, _transform_parity(imputer, path))
    if not error <= PARITY_TOL:
        path.unlink(missing_ok=True)
        raise CheckpointError(f"{path}: ONNX imputer differs from PyTorch by {error:.2e}")
    spec = verify_model_dir(dst)
    spec["onnx"] = _entry(path, exporter, error, IMPUTER_INPUTS, "completed")
    write_spec(dst, spec)  # re-sealed: spec_sha256 covers the new entry
    return {
        "model_dir": str(dst),
        "onnx": str(path),
        "onnx_bytes": path.stat().st_size,
        "parity_max_abs": error,
    }


def _transform_parity(imputer: Any, path: Path, n: int = 32) -> float:
    """Max abs difference of numeric outputs of `transform` with the torch and the ORT network."""
    import pandas as pd

    rng = np.random.default_rng(0)
    data = {}
    for col in imputer.schema_.columns:
        if col.kind == "categorical":
            data[col.name] = rng.choice(np.asarray(col.categories, dtype=object), n)
        else:
            data[col.name] = rng.uniform(col.min, col.max, n)
    frame = pd.DataFrame(data).mask(rng.random((n, len(data))) < 0.3)
    if not imputer.schema_.frame:
        frame = frame.to_numpy()
    torch_out = imputer.transform(frame)
    original = imputer.generator_
    imputer.use_refiner(OrtRefiner(path))
    try:
        ort_out = imputer.transform(frame)
    finally:
        imputer.use_refiner(original)
    a, b = pd.DataFrame(torch_out), pd.DataFrame(ort_out)
    numeric = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c])]
    if any(not a[c].equals(b[c]) for c in a.columns if c not in numeric):
        return float("inf")
    if not numeric:
        return 0.0
    return float(np.abs(a[numeric].to_numpy(float) - b[numeric].to_numpy(float)).max())


def _quality(
    images: torch.Tensor, shape: tuple[int, ...], real: torch.Tensor | None
) -> dict[str, Any]:
    """digits-FD against real digits for 8x8 digits models, else a pixel-space FD proxy."""
    from gankit.metrics import frechet_distance

    if shape == (1, 8, 8) and real is not None:
        from gankit.metrics.features import digits_extractor

        extractor = digits_extractor()
        value = frechet_distance(real=extractor.features(real), fake=extractor.features(images))
        return {"metric": "digits-FD (shipped digits classifier, 128-d)", "value": round(value, 4)}
    flat = images.flatten(1).double()
    ref = real.flatten(1).double() if real is not None else flat
    return {
        "metric": "pixel-space FD (proxy)",
        "value": round(frechet_distance(real=ref, fake=flat), 4),
    }


@dataclass
class _VariantProbe:
    """What every compressed variant is measured against: fixed latents and fp32 samples."""

    z: torch.Tensor
    reference: torch.Tensor
    shape: tuple[int, ...]
    real: torch.Tensor | None
    seconds: float

    def row(
        self, name: str, onnx_path: Path, weights: Path | None, sparsity_value: float = 0.0
    ) -> dict[str, Any]:
        """Size (of `weights`, else the ONNX file), ORT speed and quality of one variant."""
        import gzip

        session = ort_session(onnx_path)
        out = torch.from_numpy(session.run(None, {"z": self.z.numpy()})[0])
        timing = {}
        for batch in (1, 64):
            zb = self.z[:batch].numpy()
            timing[f"ort_ms_batch{batch}"] = median_ms(
                lambda zb=zb: session.run(None, {"z": zb}), self.seconds
            )
        size_file = weights if weights is not None else onnx_path
        data = size_file.read_bytes()
        return {
            "variant": name,
            "file": size_file.name,
            "bytes": len(data),
            "gzip_bytes": len(gzip.compress(data, 6)),
            "sparsity": round(sparsity_value, 4),
            **timing,
            "quality": _quality(out, self.shape, self.real),
            "max_abs_vs_fp32": round(float((out - self.reference).abs().max()), 6),
        }


def compression_report(
    model_dir: str | Path,
    work: str | Path,
    prune_amounts: tuple[float, ...] = (0.3, 0.5, 0.7),
    n: int = 1000,
    seconds: float = 2.0,
    exporter: str = "dynamo",
) -> dict[str, Any]:
    """Size, speed and quality of fp32 ONNX, int8 ONNX and pruned variants of a generator.

    Quality: digits-FD of `n` samples (fixed seed, the same latents for every variant) against
    all 1,797 real digits, plus the max abs difference to the fp32 samples. Speed: median ORT
    call time at batch 1 and 64 with 1 thread (eager PyTorch for reference). Sizes: file bytes
    and gzip-compressed bytes (pruned weights are stored dense, so only compression shrinks them).
    """
    import gankit

    work = Path(work)
    generator = gankit.load_generator(model_dir)
    shape = tuple(generator.output_shape)
    real = None
    if shape == (1, 8, 8):
        from gankit.data import load_digits

        real = load_digits("all")[0]
    z = generator.sample_latent(n, seed=0)
    with torch.inference_mode():
        reference = generator.module(z).float()
    probe = _VariantProbe(z, reference, shape, real, seconds)

    base = export_model(model_dir, work / "fp32", quantize=True, exporter=exporter)
    rows = [
        probe.row("fp32 ONNX", Path(base["onnx"]), None),
        probe.row("int8 ONNX (dynamic)", Path(base["onnx_int8"]), None),
    ]
    rows[0]["weights_bytes"] = (work / "fp32" / WEIGHTS_FILE).stat().st_size
    for amount in prune_amounts:
        out_dir = work / f"pruned-{amount}"
        report = export_model(model_dir, out_dir, prune=amount, exporter=exporter)
        rows.append(
            probe.row(
                f"pruned {int(amount * 100)}% (L1, global)",
                Path(report["onnx"]),
                out_dir / WEIGHTS_FILE,
                report["sparsity"],
            )
        )
    eager = {}
    for batch in (1, 64):
        with torch.inference_mode():
            eager[f"eager_ms_batch{batch}"] = median_ms(
                lambda b=batch: generator.module(z[:b]), seconds
            )
    return {
        "model_dir": str(model_dir),
        "n_fake": n,
        "n_real": None if real is None else int(real.shape[0]),
        "seed": 0,
        "eager": eager,
        "variants": rows,
        "fp32_quality": _quality(reference, shape, real),
    }


def median_ms(fn: Any, seconds: float) -> float:
    """Median wall time of `fn()` in ms over repeated calls for about `seconds` (>= 5 calls)."""
    fn()
    times: list[float] = []
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop or len(times) < 5:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000, 4)
