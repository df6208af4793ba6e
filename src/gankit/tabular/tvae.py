"""`TabularVAE`: synthetic tables with TVAE (Xu et al. 2019), a drop-in for `TabularGAN`.

The same front end as `TabularGAN` — the table is validated, encoded by `ModeEncoder`
(mode-specific normalisation, one-hots), trained on the engine (`gankit.models.tabular.tvae`:
the ELBO of an MLP VAE on encoded rows), decoded; distance to closest record is reported after
every fit and no synthetic row equals a training row. TVAE has no condition vector, so
`sample(n, conditions={"col": value})` keeps the rows whose `col` is `value` (rejection; a
category the model almost never makes is refused with a message rather than looped on).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gankit.engine.runs import estimator_settings, fit_model
from gankit.errors import CheckpointError, ConfigError, DataError
from gankit.modeldir import (
    check_bounds,
    check_module_fits,
    read_model_dir,
    weight_shapes,
    write_model_dir,
)
from gankit.models.tabular.tvae import TVAE, RowDecoder, RowEncoder, Rows
from gankit.registry import TABULAR_VAE
from gankit.tabular.constraints import constrained, to_spec
from gankit.tabular.encoders import ModeEncoder
from gankit.tabular.fidelity import fidelity_score
from gankit.tabular.imputer import single_thread
from gankit.tabular.privacy import NearestRecords
from gankit.tabular.synthetic import SyntheticTable
from gankit.tabular.transform import TableSchema

__all__ = ["TabularVAE"]

MAX_REJECTION_ROUNDS = 50
DISCRETE = ("argmax", "sample")


class TabularVAE(SyntheticTable):
    """TVAE (Xu et al. 2019); see the module docstring.

    Parameters: `n_steps` (optimisation steps; 300 epochs of a 500-row table at batch 500 is
    300 steps), `batch_size` (500 as in the paper; capped at the table's size), `latent_dim`
    (128), `hidden` (encoder widths, decoder mirrors them; (128, 128)), `lr` (1e-3),
    `weight_decay` (1e-5), `recon_weight` (weight of the reconstruction term against the KL:
    2 as in the TVAE reference setting, 1 = the plain ELBO), `discrete` (how a sampled row's
    categories and modes are read from the decoder's softmax: "argmax", the most likely one,
    as the reference TVAE does — better pair correlations and utility; or "sample", a draw
    from the softmax as in the paper's generative model — rows farther from the training
    rows), `run_dir` (checkpoints and metrics.jsonl; `fit(..., resume=True)` continues from
    it), `verbose`, `device`, `random_state`, `constraints` (rules every sampled row meets; see
    `gankit.tabular.constraints` and `constraint_acceptance_`).
    """

    def __init__(
        self,
        n_steps: int = 1000,
        batch_size: int = 500,
        latent_dim: int = 128,
        hidden: tuple[int, ...] = (128, 128),
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        recon_weight: float = 2.0,
        discrete: str = "argmax",
        run_dir: str | None = None,
        verbose: bool = False,
        device: str = "cpu",
        random_state: int | None = None,
        constraints: list[Any] | None = None,
    ) -> None:
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.hidden = tuple(hidden)
        self.lr = lr
        self.weight_decay = weight_decay
        self.recon_weight = recon_weight
        self.discrete = discrete
        self.run_dir = run_dir
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.constraints = constraints

    # ----------------------------------------------------------------------------- fitting
    def fit(
        self,
        data: pd.DataFrame,
        discrete_columns: list[str] | tuple[str, ...] = (),
        holdout: pd.DataFrame | None = None,
        identifier_columns: list[str] | tuple[str, ...] = (),
        resume: bool = False,
    ) -> TabularVAE:
        """Train on `data`; report distance to closest record (against `holdout` if given).

        `identifier_columns` are left out of the model and filled with fresh surrogates by
        `sample`, as in `TabularGAN`. With `resume`, training continues from the checkpoint in
        `run_dir` (same data, same parameters)."""
        return self._fit_table(data, discrete_columns, identifier_columns, holdout, resume, 2)

    def _check_params(self) -> None:
        if (
            self.n_steps < 1
            or self.batch_size < 1
            or self.latent_dim < 1
            or not self.hidden
            or min(self.hidden) < 1
        ):
            raise ConfigError(
                "TabularVAE: n_steps, batch_size, latent_dim and every hidden width must be >= 1; "
                f"got {self.n_steps}, {self.batch_size}, {self.latent_dim}, {self.hidden}"
            )
        if not self.lr > 0 or self.weight_decay < 0 or not self.recon_weight > 0:
            raise ConfigError(
                "TabularVAE: lr and recon_weight must be > 0 and weight_decay >= 0; got "
                f"{self.lr}, {self.recon_weight}, {self.weight_decay}"
            )
        if self.discrete not in DISCRETE:
            raise ConfigError(
                f"TabularVAE: discrete = {self.discrete!r}; choose one of {', '.join(DISCRETE)}"
            )

    def _train(self, df: pd.DataFrame, train: np.ndarray, seed: int, resume: bool) -> None:
        """TVAE's ELBO on the engine; `decoder_` is what gets sampled."""
        model = TVAE(
            self.encoder_.spans,
            latent_dim=self.latent_dim,
            hidden=self.hidden,
            lr=self.lr,
            weight_decay=self.weight_decay,
            recon_weight=self.recon_weight,
            seed=seed,
        )
        settings = estimator_settings(self.n_steps, seed, device=self.device, verbose=self.verbose)
        provider = Rows(train, self.batch_size, seed)
        trainer = fit_model(model, provider, settings, self.run_dir, resume_run=resume)
        self.model_ = model
        self.encoder_net_ = model.networks["enc"].cpu().eval()
        self.decoder_ = model.networks["dec"].cpu().eval()
        self.steps_done_ = trainer.step

    # ---------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def _generate(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n encoded rows from p(x|z), z ~ N(0, I): alpha ~ N(tanh(out), delta^2) clipped to
        [-1, 1]; one-hots read by argmax of the softmax (`discrete="argmax"`) or drawn from it
        (Gumbel-max, `"sample"`); every number comes from `rng`."""
        z = torch.from_numpy(rng.standard_normal((n, self.latent_dim)).astype(np.float32))
        raw = self.decoder_(z).numpy().astype(np.float64)
        delta = self.decoder_.delta().numpy().astype(np.float64)
        gumbel = np.zeros_like(raw)
        if self.discrete == "sample":
            gumbel = -np.log(-np.log(rng.random(raw.shape) + 1e-300) + 1e-300)
        out, pos, j = np.empty_like(raw), 0, 0
        for span in self.encoder_.spans:
            block = raw[:, pos : pos + span.width]
            if span.activation == "tanh":
                noise = rng.standard_normal((n, 1))
                out[:, pos : pos + 1] = np.clip(np.tanh(block) + delta[j] * noise, -1, 1)
                j += 1
            else:
                out[:, pos : pos + span.width] = block + gumbel[:, pos : pos + span.width]
            pos += span.width
        return out.astype(np.float32)

    @constrained
    def sample(
        self, n: int, conditions: dict[str, Any] | None = None, seed: int | None = None
    ) -> pd.DataFrame:
        """`n` synthetic rows; `conditions={"col": value}` keeps rows with that category."""
        if not hasattr(self, "decoder_"):
            raise ConfigError("TabularVAE.sample called before fit (or load)")
        n = self._count(n)
        fixed = self._condition(conditions)
        rng = np.random.default_rng(seed)
        out, done, drawn = [], 0, 0
        with single_thread():
            for _ in range(MAX_REJECTION_ROUNDS):
                want = max(n - done, 1)
                draw = want if fixed is None else min(max(4 * want, 256), 100_000)
                part = self.encoder_.decode(self._generate(draw, rng))
                drawn += len(part)
                if fixed is not None:
                    part = part[part[fixed[0]].astype(str) == str(fixed[1])]
                part = part[self._not_copies(part)] if n else part.iloc[:0]
                out.append(part)
                done += len(part)
                if done >= n:
                    break
        if done < n:
            raise DataError(
                f"conditions {conditions}: only {done} of {drawn} sampled rows matched; the "
                f"model rarely makes this category (TVAE samples it by rejection); ask for "
                f"fewer rows or use TabularGAN, which conditions its generator"
            )
        frame = pd.concat(out, ignore_index=True).iloc[:n].reset_index(drop=True)
        if fixed is not None:
            frame[fixed[0]] = fixed[1]
        return self._finish(frame)

    def fidelity(self, real: pd.DataFrame, n: int | None = None, seed: int = 0) -> float:
        """Column-shape and pair-correlation similarity of `n` samples to `real`."""
        synth = self.sample(n or len(real), seed=seed)
        return fidelity_score(real, synth, self.schema_)

    # ------------------------------------------------------------------------- save / load
    def params(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "latent_dim": self.latent_dim,
            "hidden": list(self.hidden),
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "recon_weight": self.recon_weight,
            "discrete": self.discrete,
            "device": self.device,
            "random_state": self.random_state,
            "constraints": self._constraint_params(),
        }

    def save(self, directory: str | Path) -> Path:
        """Write `model.safetensors` + `model.json` (kind `tabular-vae`, with the schema)."""
        if not hasattr(self, "decoder_"):
            raise ConfigError("TabularVAE.save called before fit")
        tensors = {f"decoder.{k}": v for k, v in self.decoder_.state_dict().items()}
        tensors.update({f"encoder.{k}": v for k, v in self.encoder_net_.state_dict().items()})
        tensors["train_reference"] = torch.from_numpy(self._records.reference)
        spec = {
            "kind": TABULAR_VAE,
            "schema": self.schema_.to_dict(),
            "modes": self.encoder_.modes,
            "params": self.params(),
            "constraints": to_spec(self.constraints_),
            "metrics": {
                "privacy": self.privacy_,
                "fit_seconds": self.fit_seconds_,
                "steps_done": self.steps_done_,
            },
        }
        return write_model_dir(directory, tensors, spec)

    @classmethod
    def load(cls, directory: str | Path) -> TabularVAE:
        """Load a saved TabularVAE (hash-checked, no pickle); the spec is checked against the
        weights' shapes on the meta device before any network is built."""

        def check(path: Path, spec: dict[str, Any]) -> None:
            params, where = spec["params"], f"{path}/model.json params"
            check_bounds(where, params, {"latent_dim": (1, 1 << 16)})
            if params.get("discrete", "argmax") not in DISCRETE:
                raise CheckpointError(f"{where}: 'discrete' must be one of {DISCRETE}")
            hidden = params["hidden"]
            if not isinstance(hidden, list) or not 1 <= len(hidden) <= 64:
                raise CheckpointError(f"{where}: 'hidden' must be a list of 1..64 widths")
            check_bounds(where, dict(enumerate(hidden)), dict.fromkeys(range(64), (1, 1 << 16)))
            encoder = ModeEncoder(TableSchema.from_dict(spec["schema"]), spec["modes"])
            shapes = weight_shapes(path)
            latent, spans = params["latent_dim"], encoder.spans
            check_module_fits(
                lambda: RowDecoder(latent, hidden, spans), shapes, prefix="decoder.", where=where
            )
            check_module_fits(
                lambda: RowEncoder(encoder.width, hidden, latent),
                shapes,
                prefix="encoder.",
                where=where,
            )
            if len(shapes.get("train_reference", ())) != 2:
                raise CheckpointError(f"{path}: 'train_reference' must be a matrix")

        tensors, spec = read_model_dir(directory, (TABULAR_VAE,), check=check)
        try:
            params = dict(spec["params"])
            params["hidden"] = tuple(params["hidden"])
            model = cls(**params)
            model.schema_ = TableSchema.from_dict(spec["schema"])
            model.encoder_ = ModeEncoder(model.schema_, spec["modes"])
            model.decoder_ = RowDecoder(model.latent_dim, model.hidden, model.encoder_.spans)
            model.decoder_.load_state_dict(
                {k[8:]: v for k, v in tensors.items() if k.startswith("decoder.")}
            )
            model.encoder_net_ = RowEncoder(model.encoder_.width, model.hidden, model.latent_dim)
            model.encoder_net_.load_state_dict(
                {k[8:]: v for k, v in tensors.items() if k.startswith("encoder.")}
            )
            model._records = NearestRecords(tensors["train_reference"].numpy())
            model._load_constraints(spec)
            metrics = spec.get("metrics", {})
            model.privacy_ = metrics.get("privacy")
            model.fit_seconds_ = metrics.get("fit_seconds")
            model.steps_done_ = metrics.get("steps_done")
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{directory}: incomplete or inconsistent model ({exc})") from exc
        model.decoder_.eval()
        model.encoder_net_.eval()
        return model
