"""The one training loop: any `GenerativeModel`, one `training_step` per step, then callbacks.

The Trainer owns what every model shares — the batch provider and its order, the device and
bf16 autocast, DDP wrapping of every network, callbacks, checkpoints (every network,
optimizer, RNG and callback state), the learning rates, the watchdog and resume — and never
asks which model family it trains. What a step does is the model's business.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gankit.engine import callbacks as cb
from gankit.engine.checkpoint import clean_temp_files, load_state, save_state
from gankit.engine.distributed import (
    DistContext,
    gather,
    init_distributed,
    load_sharded_network,
    shard_optimizer_state,
)
from gankit.engine.model import Batch, Batches, BatchProvider, GenerativeModel
from gankit.engine.placement import place_networks
from gankit.engine.rates import LearningRates
from gankit.engine.watch import Divergence, Watchdog
from gankit.errors import CheckpointError, ConfigError, TrainingError
from gankit.modeldir import write_model_dir


@dataclass
class Run:
    """The result of a training run."""

    path: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0

    @property
    def generator(self):
        from gankit.generator import load_generator

        return load_generator(self.path)


class Trainer:
    """Trains one model for `settings.steps` steps into `run_dir`.

    `settings` is a `TrainConfig` (steps, seed, device, amp, logging, checkpoint and watchdog
    settings); `extra_callbacks` run after the built-in ones that change the model (EMA, LR
    schedule, early stopping) and before the watchdog and the writers.
    """

    def __init__(
        self,
        model: GenerativeModel,
        provider: BatchProvider,
        settings: Any,
        run_dir: str | os.PathLike | None,
        *,
        ctx: DistContext | None = None,
        callbacks: Sequence[Any] = (),
        config_writer: Any = None,
    ) -> None:
        self.model, self.provider, self.settings = model, provider, settings
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.ctx = ctx or init_distributed(settings.device, getattr(settings, "parallel", "ddp"))
        self.device = self.ctx.device
        self.config_writer = config_writer
        if settings.deterministic:
            torch.use_deterministic_algorithms(True)
        if self.ctx.sharded and settings.ema > 0:
            raise ConfigError(
                "train.parallel = 'fsdp' does not keep an EMA of sharded weights yet; "
                "set train.ema=0 or train.parallel=ddp"
            )
        model.attach(self.device, self.ctx.wrap, self.autocast)
        self.placement = place_networks(model, getattr(settings, "placement", {}), self.ctx)
        self.optimizers = model.configure_optimizers()
        self.rates = LearningRates(self.optimizers)
        self.step, self.batches, self.rollbacks = 0, 0, 0
        self.total_steps = settings.steps
        self.should_stop = False
        self.watchdog = Watchdog(settings)
        self.model_callbacks = list(callbacks)
        if settings.ema > 0:
            if model.ema_network not in model.networks:
                raise ConfigError(
                    f"train.ema = {settings.ema}: this model has no network to average "
                    f"(ema_network = {model.ema_network!r}); set train.ema=0"
                )
            ema = cb.EMAUpdate(model, model.ema_network, settings.ema)
            self.model_callbacks.insert(0, ema)
        if settings.lr_decay != "none":
            self.model_callbacks.append(cb.LRDecay(settings.lr_decay))

    # --- one step ---------------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA (amp: auto/bf16), otherwise nothing."""
        if self.device.type == "cuda" and self.settings.amp in ("auto", "bf16"):
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def next_batch(self) -> Batch:
        """The next minibatch of the run (this rank's slice, on the device)."""
        batch = self.provider.batch(self.batches)
        self.batches += 1
        return batch.shard(self.ctx.shard).to(self.device)

    def run_step(self) -> dict[str, float]:
        """One step of the model: the only place the engine calls `training_step`."""
        return self.model.training_step(Batches(self.next_batch, self.local), self.optimizers)

    def local(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global tensor, on the device."""
        return self.ctx.shard(tensor).to(self.device, non_blocking=True)

    # --- the loop -----------------------------------------------------------------------------
    def callbacks(self) -> list:
        """Model-changing callbacks, then the watchdog (nothing is saved from a diverged step),
        then the writers (main rank only)."""
        s = self.settings
        items: list = [*self.model_callbacks, self.watchdog]
        if self.ctx.is_main and self.run_dir is not None:
            items.append(cb.MetricsLog(self.run_dir / "metrics.jsonl", s.log_every))
            if not self.ctx.sharded:  # a preview would be a collective on one rank only
                items.append(cb.SampleGrid(self.run_dir / "samples", s.sample_every))
        if self.run_dir is not None and (self.ctx.is_main or self.ctx.sharded):
            items.append(cb.Checkpointer(s.checkpoint_every))  # every rank gathers shards
        if self.ctx.is_main and self.run_dir is not None and s.tensorboard:
            items.append(cb.TensorBoard(self.run_dir / "tensorboard", s.log_every))
        if self.ctx.is_main and s.progress:
            items.append(cb.Progress(self.total_steps, self.step))
        return items

    def fit(self) -> Run:
        """Train until `steps` (or a callback stops the run); returns the Run."""
        if self.ctx.is_main and self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            clean_temp_files(self.run_dir)
            if self.config_writer is not None:
                self.config_writer(self.run_dir)
        callbacks = self.callbacks()
        for callback in callbacks:
            start = getattr(callback, "on_start", None)
            if start is not None:
                start(self)
        self.model.train_mode(True)
        while self.step < self.total_steps and not self.should_stop:
            stats = self.run_step()
            self.step += 1
            try:
                for callback in callbacks:
                    callback.on_step(self, stats)
            except Divergence as exc:
                self.recover(exc)
        # writers first (state.pt holds the live state a resume continues from), then the
        # callbacks that change the model at the end (early stopping restores its best weights)
        for callback in reversed(callbacks):
            callback.on_end(self)
        if self.writes and self.model_callbacks:
            self.write_model_dir()
        self.model.train_mode(False)
        from gankit.viz import read_history

        history = read_history(self.run_dir / "metrics.jsonl") if self.run_dir else []
        return Run(self.run_dir or Path("."), history, self.step)

    def recover(self, exc: Divergence) -> None:
        """Roll back to the last checkpoint with lower learning rates, or stop with a message.

        The rollback count is this process's own: it is not taken from the checkpoint, so each
        retry lowers the rates further and the run stops after `max_rollbacks`.
        """
        s = self.settings
        has_checkpoint = self.run_dir is not None and (self.run_dir / "state.pt").is_file()
        if s.on_divergence == "rollback" and self.rollbacks < s.max_rollbacks and has_checkpoint:
            rollbacks = self.rollbacks + 1
            self.load_checkpoint(self.run_dir)
            self.rollbacks = rollbacks
            self.rates.set_rollback(s.rollback_lr_factor**rollbacks)
            self.watchdog.reset()
            return
        if has_checkpoint:
            where = f"the last good checkpoint (step {self.checkpoint_step()}) is in {self.run_dir}"
        else:
            where = "no checkpoint was written yet"
        tried = f" after {self.rollbacks} rollback(s)" if self.rollbacks else ""
        raise TrainingError(f"training stopped{tried}: {exc}; {where}") from exc

    def checkpoint_step(self) -> int:
        return int(load_state(self.run_dir)["step"])

    # --- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (tensors and numbers only)."""
        state: dict[str, Any] = {
            "format": 2,
            "step": self.step,
            "batches": self.batches,
            "rollbacks": self.rollbacks,
            "networks": {k: gather(net.state_dict()) for k, net in self.model.networks.items()},
            "optimizers": {k: gather(opt.state_dict()) for k, opt in self.optimizers.items()},
            "model": self.model.state_dict(),
            "provider": self.provider.state_dict(),
            "callbacks": {
                c.key: c.state_dict() for c in self.callbacks_with_state() if c.state_dict()
            },
            "rates": self.rates.state_dict(),
            "rng_torch": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        return state

    def callbacks_with_state(self) -> list:
        return [c for c in [*self.model_callbacks, self.watchdog] if hasattr(c, "key")]

    @property
    def writes(self) -> bool:
        """This rank takes part in writing checkpoints: the main rank, and under FSDP every
        rank (gathering the shards is a collective; only the main rank writes files)."""
        return self.run_dir is not None and (self.ctx.is_main or self.ctx.sharded)

    def save_checkpoint(self) -> None:
        """state.pt first, then the model directory (both atomic). A full disk stops the run
        with one line naming the last complete checkpoint, which is left intact."""
        if not self.writes:
            return
        state = self.state_dict()
        if not self.ctx.is_main:
            self.write_model_dir()  # its share of the gather
            return
        try:
            save_state(self.run_dir, state)
            self.write_model_dir()
        except OSError as exc:
            last = "none"
            with contextlib.suppress(CheckpointError):
                last = f"step {self.checkpoint_step()}"
            reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or exc
            raise TrainingError(
                f"could not write the checkpoint at step {self.step} in {self.run_dir}: "
                f"{reason}; the last complete checkpoint ({last}) is intact — free space and "
                f"resume with `gankit train --resume {self.run_dir}`"
            ) from exc

    def write_model_dir(self) -> None:
        """The model directory of the run, as the model exports it (if it does)."""
        exported = self.model.export()
        if exported is not None:
            tensors, spec = exported
            tensors = gather(tensors)
            if self.ctx.is_main:
                write_model_dir(self.run_dir, tensors, {**spec, "step": self.step})

    def load_checkpoint(self, run_dir: str | os.PathLike) -> None:
        """Restore everything from `run_dir/state.pt`."""
        state = load_state(run_dir)
        if state.get("format") != 2:
            raise CheckpointError(
                f"{run_dir}/state.pt was written by an older gankit (before the common engine); "
                "it cannot be resumed — start a new run (its model directory still loads)"
            )
        try:
            for name, net in self.model.networks.items():
                if self.ctx.sharded:
                    load_sharded_network(net, state["networks"][name])
                else:
                    net.load_state_dict(state["networks"][name])
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
                if self.ctx.sharded:
                    shard_optimizer_state(opt)
            for c in self.callbacks_with_state():
                c.load_state_dict(state["callbacks"].get(c.key, {}))
            self.model.load_state_dict(state["model"])
            self.provider.load_state_dict(state["provider"])
            self.rates.load_state_dict(state["rates"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"{run_dir}/state.pt does not fit this run's config ({exc})"
            ) from exc
        self.step, self.batches = int(state["step"]), int(state["batches"])
        self.rollbacks = int(state.get("rollbacks", 0))
        torch.set_rng_state(state["rng_torch"])
        if "rng_cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng_cuda"])
