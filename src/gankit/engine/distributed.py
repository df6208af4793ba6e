"""Data parallelism under `torchrun`: the same entry point, DDP or FSDP2 inside.

Every rank draws the same global batch (real indices and noise) and trains on its slice, so a
run on N ranks matches one process on the same global batch up to floating-point reduction
order (batch-norm statistics are per rank, as in DDP without SyncBatchNorm).

`train.parallel: fsdp` shards every network's parameters, gradients and optimizer state
across the ranks with FSDP2 (`fully_shard`) instead of replicating them: for generators too
large for one device. Checkpoints then gather full tensors on every rank (a collective), so
state.pt and the model directory are the same files DDP and one process write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gankit.errors import ConfigError

CPU = torch.device("cpu")


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = CPU
    parallel: str = "ddp"  # ddp | fsdp
    mesh: Any = field(default=None, compare=False)  # the FSDP2 device mesh

    @property
    def sharded(self) -> bool:
        """Parameters are sharded across ranks (FSDP2): saving them is a collective."""
        return self.enabled and self.parallel == "fsdp"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch: torch.Tensor) -> torch.Tensor:
        """This rank's slice of a global batch."""
        if not self.enabled:
            return batch
        if batch.shape[0] % self.world_size:
            raise ConfigError(
                f"train.batch_size {batch.shape[0]} must be divisible by the number of "
                f"processes ({self.world_size})"
            )
        return batch.chunk(self.world_size)[self.rank]

    def wrap(self, module: nn.Module) -> nn.Module:
        """DDP around `module` when running distributed (FSDP2 sharding with `fsdp`)."""
        if not self.enabled:
            return module
        if self.parallel == "fsdp":
            return shard_module(module, self.mesh)
        ids = [self.device.index] if self.device.type == "cuda" else None
        # a family whose steps leave some parameters unused (ProGAN: the other stages' blocks)
        # declares it on the network; DDP then stops waiting for their gradients
        unused = bool(getattr(module, "ddp_find_unused_parameters", False))
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=unused)


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present, else CPU."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = 'cuda' but no CUDA device is available; use 'auto'")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def init_distributed(device_name: str, parallel: str = "ddp") -> DistContext:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return DistContext(device=device, parallel=parallel)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    mesh = None
    if parallel == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh

        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    return DistContext(dist.get_rank(), dist.get_world_size(), device, parallel, mesh)


def shard_module(module: nn.Module, mesh: Any) -> nn.Module:
    """FSDP2: each direct child holding parameters is one shard unit (gathered only while it
    runs), the root takes the rest. The module is changed in place and returned."""
    from torch.distributed.fsdp import fully_shard

    for child in module.children():
        if any(True for _ in child.parameters()):
            fully_shard(child, mesh=mesh)
    fully_shard(module, mesh=mesh)
    return module


def gather(value: Any) -> Any:
    """`value` with every sharded tensor (DTensor) replaced by its full tensor. A collective
    under FSDP: every rank must call it, in the same order."""
    from torch.distributed.tensor import DTensor

    if isinstance(value, DTensor):
        return value.full_tensor()
    if isinstance(value, dict):
        return {k: gather(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(gather(v) for v in value)
    return value


def load_sharded_network(module: nn.Module, full: dict[str, torch.Tensor]) -> None:
    """Load full tensors into a sharded module: each rank keeps its own shard."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    current = module.state_dict()
    local = {
        k: distribute_tensor(full[k].to(v.dtype), v.device_mesh, v.placements)
        if isinstance(v, DTensor) and k in full
        else full.get(k, v)
        for k, v in current.items()
    }
    module.load_state_dict(local)


def shard_optimizer_state(optimizer: torch.optim.Optimizer) -> None:
    """After loading full tensors into an optimizer of sharded parameters, shard its state
    like the parameters (Adam's moments), so the update mixes only DTensors."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    for group in optimizer.param_groups:
        for p in group["params"]:
            if not isinstance(p, DTensor):
                continue
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if torch.is_tensor(value) and not isinstance(value, DTensor) and value.dim():
                    state[key] = distribute_tensor(value, p.device_mesh, p.placements)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def shutdown(ctx: DistContext) -> None:
    """Leave the process group."""
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
