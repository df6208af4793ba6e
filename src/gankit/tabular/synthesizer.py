"""`TabularGAN`: synthetic tables with CTGAN's recipe (Xu et al., NeurIPS 2019), from the paper.

A thin front end: it validates the table, encodes it (`encoders.py`: mode-specific
normalisation, training-by-sampling), hands training to the engine (`gankit.models.tabular.
ctgan`: conditional WGAN-GP on PacGAN packs, EMA and early stopping as engine callbacks),
and decodes what the generator makes. Every fit reports distance to the closest training
record (`privacy.py`); no synthetic row equals a training row. Conditional sampling sets the
condition vector and keeps only rows whose generated value is the requested one
(`condition_acceptance_`); with `class_column`, an auxiliary classifier makes the rest of the
row follow that column's value too (see `gankit.models.tabular.ctgan`).
"""

from __future__ import annotations

from math import inf
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from gankit.engine.callbacks import EarlyStopping
from gankit.engine.runs import estimator_settings, fit_model
from gankit.errors import CheckpointError, ConfigError
from gankit.modeldir import (
    check_bounds,
    check_module_fits,
    read_model_dir,
    weight_shapes,
    write_model_dir,
)
from gankit.models.tabular.ctgan import CTGAN, ConditionalRows
from gankit.nets.tabular import ResidualGenerator
from gankit.registry import TABULAR_SYNTH
from gankit.tabular.constraints import constrained, to_spec
from gankit.tabular.encoders import CondSampler, ModeEncoder
from gankit.tabular.fidelity import column_shape_score, correlation_score, fidelity_score
from gankit.tabular.imputer import single_thread
from gankit.tabular.privacy import NearestRecords
from gankit.tabular.synthetic import SyntheticTable
from gankit.tabular.transform import TableSchema

__all__ = ["TabularGAN", "column_shape_score", "correlation_score", "fidelity_score"]

SPEC_KIND = TABULAR_SYNTH


class TabularGAN(SyntheticTable):
    """Conditional tabular GAN (CTGAN's recipe); see the module docstring.

    Parameters: `n_steps` (optimisation steps of G; an "epoch" of CTGAN on a 500-row table is
    one step), `batch_size` (rounded to a multiple of `pac`; default 500 as in CTGAN; rows are
    drawn with replacement, so it may exceed the table's size),
    `z_dim`, `hidden`, `pac`, `lr`, `gp_weight`, `critic_steps`, `ema` (decay of an exponential
    moving average of G's weights, which is what gets sampled; 0 = off; 0.99 lifted the
    column-shape score from ~0.67 to ~0.82 on breast at 600 steps), `early_stopping` (score
    fidelity every `eval_every` steps and keep the best generator; stop `patience` steps after
    the last gain), `run_dir` (checkpoints and metrics.jsonl go there; `fit(..., resume=True)`
    continues from it), `verbose` (a progress bar), `device` ("cpu", "cuda", "auto"),
    `random_state`, `class_column` (a discrete column, e.g. the label, that the rest of a row
    must agree with: an auxiliary classifier trained on the real rows penalises generated rows
    whose other columns point to another value; `sample(conditions={class_column: v})` then
    steers the whole row, not just that column; wine: 66-82 % -> >= 90 % agreement of a
    forest trained on real rows), `class_weight` (that penalty's weight), `dp` (differential
    privacy: `{"epsilon": 3, "delta": 1e-5, "max_grad_norm": 1.0, "bounds": ..., "categories":
    ..., "public": [...]}` trains the critic with DP-SGD; `dp_` then holds the ε spent; see
    `gankit.tabular.dp` and docs/privacy.md), `constraints` (rules every sampled row meets,
    e.g. `[{"type": "inequality", "low": "a", "high": "b"}]`; see
    `gankit.tabular.constraints`; `constraint_acceptance_` is the share of drawn rows kept).
    """

    def __init__(
        self,
        n_steps: int = 1000,
        batch_size: int | None = None,
        z_dim: int = 128,
        hidden: tuple[int, ...] = (256, 256),
        pac: int = 10,
        lr: float = 2e-4,
        gp_weight: float = 10.0,
        critic_steps: int = 1,
        ema: float = 0.99,
        early_stopping: bool = False,
        eval_every: int = 100,
        patience: int = 500,
        run_dir: str | None = None,
        verbose: bool = False,
        device: str = "cpu",
        random_state: int | None = None,
        class_column: str | None = None,
        class_weight: float = 1.0,
        dp: dict[str, Any] | None = None,
        constraints: list[Any] | None = None,
    ) -> None:
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.z_dim = z_dim
        self.hidden = tuple(hidden)
        self.pac = pac
        self.lr = lr
        self.gp_weight = gp_weight
        self.critic_steps = critic_steps
        self.ema = ema
        self.early_stopping = early_stopping
        self.eval_every = eval_every
        self.patience = patience
        self.run_dir = run_dir
        self.verbose = verbose
        self.device = device
        self.random_state = random_state
        self.class_column = class_column
        self.class_weight = class_weight
        self.dp = dp
        self.constraints = constraints

    # ----------------------------------------------------------------------------- fitting
    def fit(
        self,
        data: pd.DataFrame,
        discrete_columns: list[str] | tuple[str, ...] = (),
        holdout: pd.DataFrame | None = None,
        identifier_columns: list[str] | tuple[str, ...] = (),
        resume: bool = False,
    ) -> TabularGAN:
        """Train on `data`; report distance to closest record (against `holdout` if given).

        `identifier_columns` (ids, names, free text: a value per row) are left out of the model
        and `sample` fills them with fresh surrogates ("synthetic-000001", ...) that never equal
        a training value; an undeclared column that looks like one is refused. With `resume`,
        training continues from the checkpoint in `run_dir` (same data, same parameters)."""
        return self._fit_table(
            data, discrete_columns, identifier_columns, holdout, resume, 2 * self.pac
        )

    def _check_params(self) -> None:
        if self.n_steps < 1 or self.pac < 1 or self.critic_steps < 1 or not 0 < self.lr < inf:
            raise ConfigError(
                "TabularGAN: n_steps, pac, critic_steps must be >= 1 and lr finite and > 0; got "
                f"{self.n_steps}, {self.pac}, {self.critic_steps}, {self.lr}"
            )
        if not 0.0 <= self.class_weight < inf:
            raise ConfigError(
                f"TabularGAN: class_weight must be finite and >= 0, got {self.class_weight}"
            )
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"TabularGAN: ema must be in [0, 1), got {self.ema}")
        if not 0.0 <= self.gp_weight < inf:
            raise ConfigError(
                f"TabularGAN: gp_weight must be finite and >= 0, got {self.gp_weight}"
            )
        sizes = [self.z_dim, *self.hidden]
        if not self.hidden or len(self.hidden) > 64 or not all(1 <= h <= 1 << 16 for h in sizes):
            raise ConfigError(
                f"TabularGAN: z_dim and hidden widths must be in [1, 65536] (at most 64 layers), "
                f"got z_dim={self.z_dim}, hidden={self.hidden}"
            )
        if self.early_stopping and (self.eval_every < 1 or self.patience < 1):
            raise ConfigError(
                f"TabularGAN: eval_every and patience must be >= 1 steps, got "
                f"{self.eval_every}, {self.patience}"
            )

    def _batch(self) -> int:
        size = self.batch_size or 500  # rows are drawn with replacement: may exceed n
        return max(self.pac, size // self.pac * self.pac)

    def _train(self, df: pd.DataFrame, train: np.ndarray, seed: int, resume: bool) -> None:
        """CTGAN's game on the engine; generator_ is what gets sampled (its EMA when kept)."""
        self.sampler_ = CondSampler(train, self.encoder_.discrete_spans)
        model = CTGAN(
            self.encoder_.spans,
            self.encoder_.discrete_spans,
            self.sampler_.cond_dim,
            z_dim=self.z_dim,
            hidden=self.hidden,
            pac=self.pac,
            lr=self.lr,
            gp_weight=self.gp_weight,
            critic_steps=self.critic_steps,
            class_span=self._class_span(),
            class_weight=self.class_weight,
        )
        provider = ConditionalRows(train, self.sampler_, self._batch(), seed)
        settings = estimator_settings(
            self.n_steps, seed, device=self.device, verbose=self.verbose, ema=self.ema
        )
        callbacks = []
        if self.early_stopping:
            self.model_ = model  # the score samples from it while it trains
            score = lambda: self._fidelity(df, seed)  # noqa: E731
            callbacks.append(EarlyStopping(score, "g", self.eval_every, self.patience))
        trainer = fit_model(
            model, provider, settings, self.run_dir, callbacks=callbacks, resume_run=resume
        )
        self.model_ = model
        self.generator_ = model.sampling_network("g").cpu().eval()
        self.steps_done_ = trainer.step
        self.history_ = list(callbacks[0].history) if callbacks else []

    def _class_span(self) -> tuple[int, int] | None:
        """(start, width) of `class_column` in the encoded row; a ConfigError unless it is one
        of the table's discrete columns."""
        if self.class_column is None:
            return None
        spans = {name: (start, width) for start, width, name in self.encoder_.discrete_spans}
        if str(self.class_column) not in spans:
            raise ConfigError(
                f"TabularGAN: class_column {self.class_column!r} is not a discrete column of "
                f"the table; discrete columns are {sorted(spans)} (name it in discrete_columns)"
            )
        return spans[str(self.class_column)]

    def _fidelity(self, real: pd.DataFrame, seed: int) -> float:
        """Fidelity of 500 samples of the current (EMA) generator to the training table."""
        rng = np.random.default_rng(seed)
        fake = self._generate(min(500, len(real)), rng, None, self.model_.sampling_network("g"))
        return fidelity_score(real, self.encoder_.decode(fake), self.schema_)

    # ---------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def _generate(
        self,
        n: int,
        rng: np.random.Generator,
        fixed: tuple[int, int] | None,
        network: torch.nn.Module | None = None,
    ) -> np.ndarray:
        """n encoded rows (Gumbel-max one-hots) from `network` (default: generator_) in eval
        mode; every random number comes from `rng`."""
        net = network if network is not None else self.generator_
        cond = torch.from_numpy(self.sampler_.sample_cond(n, rng, fixed))
        z = torch.from_numpy(rng.standard_normal((n, self.z_dim)).astype(np.float32))
        device = next(net.parameters()).device
        was_training = net.training
        net.eval()
        raw = net(z.to(device), cond.to(device)).cpu()
        net.train(was_training)
        gumbel = -torch.log(-torch.log(torch.from_numpy(rng.random(raw.shape)).float() + 1e-12))
        parts, pos = [], 0
        for span in self.encoder_.spans:
            block = raw[:, pos : pos + span.width]
            if span.activation == "tanh":
                parts.append(torch.tanh(block))
            else:
                parts.append(block + gumbel[:, pos : pos + span.width])  # Gumbel-max sample
            pos += span.width
        return torch.cat(parts, 1).numpy()

    @constrained
    def sample(
        self, n: int, conditions: dict[str, Any] | None = None, seed: int | None = None
    ) -> pd.DataFrame:
        """`n` synthetic rows; `conditions={"col": value}` fixes one discrete column: the
        condition vector asks for the value and only rows whose generated value is it are kept
        (`condition_acceptance_`: the share kept); if too few are, the rest get the value
        written in."""
        if not hasattr(self, "generator_"):
            raise ConfigError("TabularGAN.sample called before fit (or load)")
        n = self._count(n)
        fixed = self._fixed(conditions)
        rng = np.random.default_rng(seed)
        name, value = self._fixed_value(fixed)
        out, done, drawn, matched = [], 0, 0, 0
        with single_thread(), torch.no_grad():
            for round_ in range(100):
                part = self.encoder_.decode(self._generate(max(n - done, 1), rng, fixed))
                drawn += len(part)
                if name is not None and round_ < 50:  # keep rows holding the requested value
                    match = (part[name] == value).to_numpy()
                    matched += int(match.sum())
                    part = part[match]
                part = part[self._not_copies(part)] if n else part.iloc[:0]
                out.append(part)
                done += len(part)
                if done >= n:
                    break
        frame = pd.concat(out, ignore_index=True).iloc[:n]
        if name is not None:
            self.condition_acceptance_ = matched / drawn if drawn else 1.0
            frame[name] = value
        return self._finish(frame)

    @torch.no_grad()
    def critic_scores(
        self, rows: pd.DataFrame, conditions: dict[str, Any] | None = None, seed: int = 0
    ) -> np.ndarray:
        """The trained critic's score of each row (higher = more like the real table), for
        discriminator rejection (Azadi et al. 2019: keep the rows the critic rates highest).

        Each row is encoded (its mode drawn from the posterior with `seed`), given the condition
        vector of `conditions` (or one drawn by frequency) and scored alone, as a pack of `pac`
        copies of itself, with dropout off. Needs the critic: only after `fit` in this process
        (a loaded model keeps the generator only)."""
        if not hasattr(self, "model_"):
            raise ConfigError(
                "TabularGAN.critic_scores needs the critic, which only a model fitted in this "
                "process has (save/load keep the generator only)"
            )
        rng = np.random.default_rng(seed)
        encoded = torch.from_numpy(self.encoder_.encode(rows[self.schema_.names], rng))
        cond = torch.from_numpy(self.sampler_.sample_cond(len(rows), rng, self._fixed(conditions)))
        critic = self.model_.networks["d"]
        was_training = critic.training
        critic.eval()
        device = next(critic.parameters()).device
        packs = torch.cat([encoded, cond], 1).repeat_interleave(self.pac, 0).to(device)
        with single_thread():
            scores = critic(packs).reshape(-1).cpu().numpy()
        critic.train(was_training)
        return scores.astype(np.float64)

    def _fixed_value(self, fixed: tuple[int, int] | None) -> tuple[str | None, Any]:
        """(column, category) of a fixed condition, or (None, None)."""
        if fixed is None:
            return None, None
        name = self.encoder_.discrete_spans[fixed[0]][2]
        return name, self.schema_.columns[self._col_index(name)].categories[fixed[1]]

    def _col_index(self, name: str) -> int:
        return self.schema_.names.index(name)

    def _fixed(self, conditions: dict[str, Any] | None) -> tuple[int, int] | None:
        """(discrete span, category index) of a one-column condition."""
        condition = self._condition(conditions)
        if condition is None:
            return None
        name, value = condition
        spans = {c: j for j, (_, _, c) in enumerate(self.encoder_.discrete_spans)}
        categories = self.schema_.columns[self._col_index(name)].categories
        return spans[name], categories.index(value)

    # ------------------------------------------------------------------------- save / load
    def save(self, directory: str | Path) -> Path:
        """Write `model.safetensors` + `model.json` (the synthesizer kind, with the schema)."""
        if not hasattr(self, "generator_"):
            raise ConfigError("TabularGAN.save called before fit")
        tensors = {f"generator.{k}": v for k, v in self.generator_.state_dict().items()}
        if not getattr(self, "dp_", None):  # a DP model keeps no training rows
            tensors["train_reference"] = torch.from_numpy(self._records.reference)
        spec = {
            "kind": SPEC_KIND,
            "schema": self.schema_.to_dict(),
            "modes": self.encoder_.modes,
            "sampler": self.sampler_.to_dict(),
            "params": {
                "n_steps": self.n_steps,
                "batch_size": self.batch_size,
                "z_dim": self.z_dim,
                "hidden": list(self.hidden),
                "pac": self.pac,
                "lr": self.lr,
                "gp_weight": self.gp_weight,
                "critic_steps": self.critic_steps,
                "ema": self.ema,
                "early_stopping": self.early_stopping,
                "eval_every": self.eval_every,
                "patience": self.patience,
                "device": self.device,
                "random_state": self.random_state,
                "class_column": self.class_column,
                "class_weight": self.class_weight,
                "dp": self.dp,
                "constraints": self._constraint_params(),
            },
            "dp": getattr(self, "dp_", None),
            "constraints": to_spec(self.constraints_),
            "metrics": {
                "privacy": None if getattr(self, "dp_", None) else self.privacy_,
                "fit_seconds": self.fit_seconds_,
                "steps_done": self.steps_done_,
            },
        }
        return write_model_dir(directory, tensors, spec)

    @classmethod
    def load(cls, directory: str | Path) -> TabularGAN:
        """Load a saved synthesizer (hash-checked, no pickle).

        The spec is checked against the weights' shapes on the meta device before any tensor
        is read or any network built, so an edited z_dim or width cannot make it allocate."""

        def check(path: Path, spec: dict[str, Any]) -> None:
            params, where = spec["params"], f"{path}/model.json params"
            check_bounds(where, params, {"z_dim": (1, 1 << 16), "pac": (1, 64)})
            hidden = params["hidden"]
            if not isinstance(hidden, list) or len(hidden) > 64:
                raise CheckpointError(f"{where}: 'hidden' must be a list of at most 64 widths")
            check_bounds(where, dict(enumerate(hidden)), dict.fromkeys(range(64), (1, 1 << 16)))
            encoder = ModeEncoder(TableSchema.from_dict(spec["schema"]), spec["modes"])
            cond_dim = sum(w for _, w, _ in encoder.discrete_spans)
            check_module_fits(
                lambda: ResidualGenerator(params["z_dim"], cond_dim, tuple(hidden), encoder.width),
                weight_shapes(path),
                prefix="generator.",
                where=where,
            )

        tensors, spec = read_model_dir(directory, (SPEC_KIND,), check=check)
        try:
            params = dict(spec["params"])
            params["hidden"] = tuple(params["hidden"])
            model = cls(**params)
            model.schema_ = TableSchema.from_dict(spec["schema"])
            model.encoder_ = ModeEncoder(model.schema_, spec["modes"])
            model.sampler_ = CondSampler.from_dict(model.encoder_.discrete_spans, spec["sampler"])
            model.generator_ = ResidualGenerator(
                model.z_dim, model.sampler_.cond_dim, model.hidden, model.encoder_.width
            )
            model.generator_.load_state_dict(
                {k[10:]: v for k, v in tensors.items() if k.startswith("generator.")}
            )
            model.dp_ = spec.get("dp")
            model._load_constraints(spec)
            if "train_reference" in tensors:
                model._records = NearestRecords(tensors["train_reference"].numpy())
            metrics = spec.get("metrics", {})
            model.privacy_ = metrics.get("privacy")
            model.fit_seconds_ = metrics.get("fit_seconds")
            model.steps_done_ = metrics.get("steps_done")
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{directory}: incomplete or inconsistent model ({exc})") from exc
        model.generator_.eval()
        return model
