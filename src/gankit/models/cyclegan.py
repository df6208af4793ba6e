"""CycleGAN (Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks") as a model step.

Generators G: A -> B (`g_ab`) and F: B -> A (`g_ba`), discriminators D_A and D_B. One step:

* generators (one optimizer `g` over G and F), with a = the batch of A and b the batch of B:
  L_GAN = ½E[(D_B(G(a)) - 1)²] + ½E[(D_A(F(b)) - 1)²]          (least squares, Mao et al. 2017)
  L_cyc = λ_cyc (E|F(G(a)) - a| + E|G(F(b)) - b|)                (cycle consistency, eq. 2)
  L_id  = λ_id (E|G(b) - b| + E|F(a) - a|)                       (identity, section 5.2)
* discriminators (one optimizer `d` over D_A and D_B): the least-squares loss on real images
  and on fakes drawn from a pool of the last `pool_size` generated images (Shrivastava et al.
  2017): each new fake is stored, and with probability ½ a stored one is shown instead.

The pools (images, fill count, RNG) are model state, checkpointed, so resume is exact. λ_id is
an absolute weight (the paper's 0.5 × λ_cyc = 5). A trained model is a directory of kind
`cyclegan` holding both generators; `load_cyclegan(dir).translate(x, "a2b" | "b2a")`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gankit.engine.model import Batches, GenerativeModel, update
from gankit.errors import CheckpointError, ConfigError, DataError, GankitError
from gankit.modeldir import check_bounds, check_module_fits, read_model_dir, weight_shapes
from gankit.nets.cyclegan import NORMS, build_networks
from gankit.objectives import least_squares_d, least_squares_g
from gankit.registry import CYCLEGAN_KIND

DIRECTIONS = {"a2b": "g_ab", "b2a": "g_ba"}
PREVIEW = 6  # images per row of the preview grid (6 rows: a square grid)


# ------------------------------------------------------------------------------- the losses
def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference."""
    return (x - y).abs().mean()


def cycle_loss(
    a: torch.Tensor, rec_a: torch.Tensor, b: torch.Tensor, rec_b: torch.Tensor, weight: float
) -> torch.Tensor:
    """λ_cyc (E|F(G(a)) - a| + E|G(F(b)) - b|)."""
    return weight * (l1(rec_a, a) + l1(rec_b, b))


def identity_loss(
    a: torch.Tensor, f_a: torch.Tensor, b: torch.Tensor, g_b: torch.Tensor, weight: float
) -> torch.Tensor:
    """λ_id (E|G(b) - b| + E|F(a) - a|): each generator leaves its own target domain alone."""
    return weight * (l1(g_b, b) + l1(f_a, a))


class ImagePool:
    """The last `size` fakes shown to a discriminator (Shrivastava et al. 2017).

    `query(fakes)`: while the pool fills, each fake is stored and returned; once full, each is
    returned with probability ½, otherwise a random stored fake is returned and replaced by it.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.count = size, 0
        self.images: torch.Tensor | None = None
        self.rng = torch.Generator().manual_seed(seed)

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        fakes = fakes.detach()
        if self.images is None:
            self.images = torch.zeros(self.size, *fakes.shape[1:], dtype=fakes.dtype)
        out = []
        for image in fakes:
            if self.count < self.size:
                self.images[self.count] = image.cpu()
                self.count += 1
                out.append(image)
            elif float(torch.rand((), generator=self.rng)) < 0.5:
                out.append(image)
            else:
                i = int(torch.randint(self.size, (), generator=self.rng))
                out.append(self.images[i].clone().to(fakes.device))
                self.images[i] = image.cpu()
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"count": self.count, "rng": self.rng.get_state()}
        if self.images is not None:
            state["images"] = self.images.clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        self.rng.set_state(state["rng"])
        self.images = state["images"].clone() if "images" in state else None


# -------------------------------------------------------------------------- the engine model
def architecture(model_cfg: Any, shape: list[int]) -> dict[str, Any]:
    """The `architecture` entry of model.json."""
    return {
        "shape": [int(s) for s in shape],
        "g_width": int(model_cfg.g_width),
        "d_width": int(model_cfg.d_width),
        "g_blocks": int(model_cfg.g_blocks),
        "d_layers": int(model_cfg.d_layers),
        "norm": model_cfg.norm,
        "patch": bool(model_cfg.patch),
        "g_global": bool(model_cfg.g_global),
    }


def check_config(cfg: Any) -> None:
    """ConfigError for settings CycleGAN cannot use."""
    m = cfg.model
    if cfg.data.name != "unpaired":
        raise ConfigError(
            f"model.family = 'cyclegan' translates between two domains; set data.name = "
            f"'unpaired' (data.root_a and data.root_b, or data.domains), not {cfg.data.name!r}"
        )
    if m.norm not in NORMS:
        raise ConfigError(f"model.norm = {m.norm!r} is not allowed; choose one of {NORMS}")
    for key in ("g_width", "d_width", "d_layers"):
        if not 1 <= getattr(m, key) <= 4096:
            raise ConfigError(f"model.{key} = {getattr(m, key)!r} must be in 1..4096")
    for key in ("g_blocks", "pool_size"):
        if not 0 <= getattr(m, key) <= 100_000:
            raise ConfigError(f"model.{key} = {getattr(m, key)!r} must be in 0..100000")
    for key in ("cycle_weight", "identity_weight"):
        if getattr(m, key) < 0:
            raise ConfigError(f"model.{key} = {getattr(m, key)!r} must be >= 0")
    if cfg.train.ema > 0:
        raise ConfigError("train.ema must be 0 for model.family = cyclegan")


def build(cfg) -> tuple[CycleGAN, Any]:
    """CycleGAN and its unpaired batch provider (the registry builder of family `cyclegan`)."""
    from gankit.data.unpaired import UnpairedBatches, load_unpaired

    check_config(cfg)
    data = load_unpaired(cfg.data)
    return CycleGAN(cfg, data), UnpairedBatches(data, cfg.train.batch_size, cfg.train.seed)


class CycleGAN(GenerativeModel):
    """Networks `g_ab`, `g_ba`, `d_a`, `d_b`; optimizers `g` (both generators) and `d`."""

    ema_network = None

    def __init__(self, cfg, data) -> None:
        super().__init__()
        self.cfg, self.data = cfg, data
        self.arch = architecture(cfg.model, data.shape)
        self.networks = build_networks(self.arch)
        m, seed = cfg.model, cfg.train.seed
        self.cycle_weight, self.identity_weight = m.cycle_weight, m.identity_weight
        self.pools = {
            "a": ImagePool(m.pool_size, seed + 11),
            "b": ImagePool(m.pool_size, seed + 12),
        }
        self.fixed_a, self.fixed_b = data.a[:PREVIEW], data.b[:PREVIEW]

    def _params(self, *names: str) -> list[nn.Parameter]:
        return [p for name in names for p in self.networks[name].parameters()]

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        from gankit.models.gan import make_optimizer

        t = self.cfg.train
        return {
            "g": make_optimizer(t.optimizer, self._params("g_ab", "g_ba"), t.lr_g, t.betas, 0),
            "d": make_optimizer(t.optimizer, self._params("d_a", "d_b"), t.lr_d, t.betas, 0),
        }

    def training_step(self, batches: Batches, optimizers) -> dict[str, float]:
        """One generator update (GAN + cycle + identity), then one update of both Ds."""
        batch = batches.next()
        a, b = batch.x, batch.extra["b"]
        g_ab, g_ba, d_a, d_b = (self.live[k] for k in ("g_ab", "g_ba", "d_a", "d_b"))
        clip = self.cfg.train.grad_clip
        with self.autocast():
            fake_b, fake_a = g_ab(a), g_ba(b)
            gan = least_squares_g(d_b(fake_b)) + least_squares_g(d_a(fake_a))
            cyc = cycle_loss(a, g_ba(fake_b), b, g_ab(fake_a), self.cycle_weight)
            loss_g = gan + cyc
            idt = torch.zeros(())
            if self.identity_weight > 0:
                idt = identity_loss(a, g_ba(a), b, g_ab(b), self.identity_weight)
                loss_g = loss_g + idt
        update(loss_g, optimizers["g"], self._params("g_ab", "g_ba"), clip)
        with self.autocast():
            pooled_a, pooled_b = self.pools["a"].query(fake_a), self.pools["b"].query(fake_b)
            loss_da = least_squares_d(d_a(a), d_a(pooled_a))
            loss_db = least_squares_d(d_b(b), d_b(pooled_b))
        update(loss_da + loss_db, optimizers["d"], self._params("d_a", "d_b"), clip)
        return {
            "loss_g": float(loss_g.detach()),
            "loss_d": float((loss_da + loss_db).detach()),
            "g_gan": float(gan.detach()),
            "cycle": float(cyc.detach()),
            "identity": float(idt.detach()),
        }

    def state_dict(self) -> dict[str, Any]:
        return {f"pool_{k}": pool.state_dict() for k, pool in self.pools.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, pool in self.pools.items():
            pool.load_state_dict(state[f"pool_{k}"])

    # --- translating and saving ---------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x: torch.Tensor, direction: str = "a2b") -> torch.Tensor:
        """G(x) ("a2b") or F(x) ("b2a") in eval mode."""
        net = self.networks[_network(direction)]
        was_training = net.training
        net.eval()
        out = net(x.to(self.device)).float().cpu()
        net.train(was_training)
        return out

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> torch.Tensor:
        """Translations G(a) of n images of domain A (drawn with the seed): a translator has no
        latent space to sample."""
        gen = torch.Generator().manual_seed(seed or 0)
        idx = torch.randint(len(self.data.a), (n,), generator=gen)
        return self.translate(self.data.a[idx], "a2b")

    def preview(self) -> tuple[torch.Tensor, None]:
        """Rows: a, G(a), F(G(a)), b, F(b), G(F(b)) for the first images of each domain."""
        a, b = self.fixed_a, self.fixed_b
        ab, ba = self.translate(a, "a2b"), self.translate(b, "b2a")
        rows = [a, ab, self.translate(ab, "b2a"), b, ba, self.translate(ba, "a2b")]
        return torch.cat(rows).clamp(-1, 1), None

    def spec(self) -> dict[str, Any]:
        from gankit import __version__
        from gankit.config import to_dict

        return {
            "kind": CYCLEGAN_KIND,
            "architecture": self.arch,
            "latent_dim": None,
            "num_classes": None,
            "data": self.data.spec(),
            "directions": {"a2b": "G: domain A -> B", "b2a": "F: domain B -> A"},
            "preprocessing": {"range": [-1, 1], "description": "pixels scaled to [-1, 1]"},
            "config": to_dict(self.cfg),
            "gankit_version": __version__,
        }

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Both generators (`g_ab.*`, `g_ba.*`): what translation needs."""
        weights = {}
        for name in DIRECTIONS.values():
            weights.update({f"{name}.{k}": v for k, v in self.networks[name].state_dict().items()})
        return weights, self.spec()


def _network(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise DataError(f"direction = {direction!r}; choose 'a2b' (G: A -> B) or 'b2a' (F: B -> A)")
    return DIRECTIONS[direction]


# ------------------------------------------------------------------------------------ loading
class LoadedCycleGAN:
    """A trained CycleGAN read from its model directory: `translate(x, direction)`."""

    is_image = True

    def __init__(self, nets: dict[str, nn.Module], spec: dict[str, Any], device: Any = "cpu"):
        self.device = torch.device(device)
        self.nets = {k: net.to(self.device).eval() for k, net in nets.items()}
        self.spec = spec

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.spec["architecture"]["shape"])

    @torch.no_grad()
    def translate(self, x: Any, direction: str = "a2b", batch_size: int = 1024) -> torch.Tensor:
        """Images [n, C, H, W] in [-1, 1] of the source domain -> the other domain."""
        net = self.nets[_network(direction)]
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if tuple(x.shape[1:]) != self.shape:
            raise DataError(
                f"x must have shape [n, {', '.join(map(str, self.shape))}] (images in [-1, 1]), "
                f"got {list(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise DataError("x holds NaN or inf values")
        out = [net(c.to(self.device)).float().cpu() for c in x.split(batch_size)]
        return torch.cat(out) if out else x.clone()


def check_cyclegan_spec(path: Any, spec: dict[str, Any]) -> None:
    """CheckpointError unless model.json's architecture fits the weights, allocating nothing."""
    where = f"{path}/model.json"
    arch = spec.get("architecture")
    if not isinstance(arch, dict):
        raise CheckpointError(f"{where}: 'architecture' must be an object")
    bounds = {"g_width": (1, 4096), "d_width": (1, 4096), "g_blocks": (0, 256), "d_layers": (1, 16)}
    check_bounds(where, arch, bounds)
    shape = arch.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 4096 for s in shape)
    ):
        raise CheckpointError(f"{where}: architecture.shape is {shape!r}, expected [C, H, W]")
    if arch.get("norm") not in NORMS:
        raise CheckpointError(f"{where}: norm {arch.get('norm')!r} unknown; expected {NORMS}")
    shapes = weight_shapes(path)
    for name in DIRECTIONS.values():
        check_module_fits(
            lambda: build_networks(arch)["g_ab"], shapes, prefix=f"{name}.", where=where
        )


def load_cyclegan(path: str | os.PathLike, device: Any = "cpu") -> LoadedCycleGAN:
    """Load a CycleGAN model directory (hashes and spec checked first, no pickle)."""
    tensors, spec = read_model_dir(path, (CYCLEGAN_KIND,), check=check_cyclegan_spec)
    nets = build_networks(spec["architecture"])
    loaded = {}
    try:
        for name in DIRECTIONS.values():
            prefix = f"{name}."
            nets[name].load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
            loaded[name] = nets[name]
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model.json ({exc})") from exc
    return LoadedCycleGAN(loaded, spec, device)


# --------------------------------------------------------------------- translating image files
def translate_files(
    model_dir: str | os.PathLike, src: str | os.PathLike, out: str | os.PathLike, direction: str
) -> list[Path]:
    """Translate one image file, or every image in a folder, into `out` (a .png file for one
    image, else a folder receiving one PNG per input, same names). Returns the written paths."""
    from gankit.data.images import IMAGE_SUFFIXES
    from gankit.viz import save_image, to_uint8

    model = load_cyclegan(model_dir)
    src, out = Path(src), Path(out)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{src}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    elif src.is_file():
        files = [src]
    else:
        raise DataError(f"{src}: no such file or folder")
    x = torch.stack([read_image(p, model.shape) for p in files])
    pixels = to_uint8(model.translate(x, direction))
    if pixels.shape[-1] == 1:
        pixels = pixels[..., 0]  # greyscale PNGs for a greyscale model
    if len(files) == 1 and out.suffix.lower() == ".png":
        out.parent.mkdir(parents=True, exist_ok=True)
        return [save_image(pixels[0], out)]
    out.mkdir(parents=True, exist_ok=True)
    return [save_image(pixels[i], out / f"{p.stem}.png") for i, p in enumerate(files)]


def read_image(path: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """One image file as [C, H, W] in [-1, 1], converted and resized to `shape`."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from gankit.data.images import to_unit_range

    c, h, w = shape
    try:
        with Image.open(path) as img:
            img = img.convert("L" if c == 1 else "RGB")
            if img.size != (w, h):
                img = img.resize((w, h), Image.Resampling.BILINEAR)
            array = np.asarray(img).reshape(h, w, c).transpose(2, 0, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: unreadable image ({exc})") from exc
    return to_unit_range(array, 255.0)


def example_images(model: LoadedCycleGAN, n: int = 8) -> tuple[torch.Tensor, torch.Tensor] | None:
    """n held-out images of each domain for pictures (the built-in domains' test split, or
    the first images of the training folders when they are still there), else None."""
    from gankit.data.unpaired import builtin_domains, folder_domains

    data = model.spec.get("data", {})
    if data.get("domains"):
        test = builtin_domains(data["domains"], "test", int(data.get("seed", 0)))
        return test.a[:n], test.b[:n]
    cfg = model.spec.get("config", {}).get("data", {})
    try:
        from gankit.config import UnpairedDataConfig

        found = folder_domains(UnpairedDataConfig(**cfg))
    except (GankitError, TypeError):
        return None
    return found.a[:n], found.b[:n]


def translation_grid(model: LoadedCycleGAN, n: int = 8) -> torch.Tensor | None:
    """Rows a, G(a), F(G(a)), b, F(b), G(F(b)) of `example_images` (n per row), or None."""
    found = example_images(model, n)
    if found is None:
        return None
    a, b = found
    ab, ba = model.translate(a, "a2b"), model.translate(b, "b2a")
    rows = [a, ab, model.translate(ab, "b2a"), b, ba, model.translate(ba, "a2b")]
    return torch.cat([r[:n] for r in rows]).clamp(-1, 1)
