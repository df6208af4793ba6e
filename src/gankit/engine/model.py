"""The contract between a model family and the engine.

A `GenerativeModel` names its networks, builds their optimizers, runs one training step on the
batches the engine hands it, samples, and describes itself for `model.json`. The engine
(`Trainer`) owns everything the families share — data order, device, autocast, DDP, callbacks,
checkpoints, the watchdog, resume — and never asks which family it is training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

Stats = dict[str, float]


@dataclass
class Batch:
    """One minibatch: the tensors a model's step reads (`x` real samples; the rest optional)."""

    x: torch.Tensor
    labels: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to(self, device: torch.device) -> Batch:
        moved = {k: v.to(device) if torch.is_tensor(v) else v for k, v in self.extra.items()}
        labels = None if self.labels is None else self.labels.to(device, non_blocking=True)
        return Batch(self.x.to(device, non_blocking=True), labels, moved)

    def shard(self, take: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """This rank's slice: `take` is applied to every per-sample tensor."""
        extra = {
            k: take(v) if torch.is_tensor(v) and len(v) == len(self.x) else v
            for k, v in self.extra.items()
        }
        labels = None if self.labels is None else take(self.labels)
        return Batch(take(self.x), labels, extra)


class BatchProvider(Protocol):
    """Where the minibatches come from. `batch(i)` is the i-th batch of the run; a provider
    whose order depends on more than `i` (an RNG) keeps it in `state_dict` so resume is exact."""

    def batch(self, index: int) -> Batch: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Batches:
    """What a training step draws from: `next()` gives the next minibatch on the right device;
    `local(t)` turns a tensor the model drew for the global batch (noise) into this rank's
    slice on the device."""

    def __init__(
        self,
        next_batch: Callable[[], Batch],
        local: Callable[[torch.Tensor], torch.Tensor] = lambda t: t,
    ) -> None:
        self.next, self.local = next_batch, local


class GenerativeModel:
    """Base class of every model family trained by the engine.

    Subclasses set `networks` (name -> module; every one is checkpointed and DDP-wrapped) and
    implement `configure_optimizers`, `training_step`, `sample` and `spec`. During training,
    `self.live[name]` is the (possibly DDP-wrapped) network to call in the step, and
    `self.averages[name]` an averaged copy when an EMA callback keeps one (sampling uses it).
    """

    networks: dict[str, nn.Module]
    ema_network: str | None = "g"  # what `train.ema` averages (and sampling then uses)

    def __init__(self) -> None:
        self.networks = {}
        self.live: dict[str, nn.Module] = {}
        self.averages: dict[str, nn.Module] = {}
        self.autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
        self.device = torch.device("cpu")

    # --- what the engine calls ------------------------------------------------------------
    def attach(
        self,
        device: torch.device,
        wrap: Callable[[nn.Module], nn.Module],
        autocast: Callable[[], contextlib.AbstractContextManager],
    ) -> None:
        """Move the networks to `device`; keep wrapped copies for the step (DDP under torchrun)."""
        self.device, self.autocast = device, autocast
        for name, net in self.networks.items():
            self.networks[name] = net.to(device)
        self.live = {name: wrap(net) for name, net in self.networks.items()}

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimizer per trained network (or group), by name."""
        raise NotImplementedError

    def training_step(
        self, batches: Batches, optimizers: dict[str, torch.optim.Optimizer]
    ) -> Stats:
        """One optimisation step; returns finite statistics to log ("loss_*" keys are watched)."""
        raise NotImplementedError

    def train_mode(self, training: bool) -> None:
        for net in self.networks.values():
            net.train(training)

    def state_dict(self) -> dict[str, Any]:
        """Model state outside the networks that resume needs (noise RNGs, adaptive values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """(tensors, spec) of the model directory written at each checkpoint, or None."""
        return None

    # --- what users call -------------------------------------------------------------------
    def sampling_network(self, name: str) -> nn.Module:
        """The network to sample from: its average when an EMA keeps one."""
        return self.averages.get(name, self.networks[name])

    def sample(self, n: int, *, seed: int | None = None, conditions: Any = None) -> Any:
        raise NotImplementedError

    def preview(self) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """What the sample-grid callback draws (samples, real reference), or None."""
        return None

    def spec(self) -> dict[str, Any]:
        """What `model.json` needs to rebuild the model."""
        raise NotImplementedError


def update(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    params: Iterator[nn.Parameter] | None = None,
    clip: float = 0.0,
) -> None:
    """zero_grad, backward, optional gradient-norm clip, step: the one update every model uses."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0 and params is not None:
        nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()
