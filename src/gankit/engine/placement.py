"""Model parallelism: each network of one model on a device of its own.

`train.placement: {g: cuda:0, d: cuda:1}` moves the named networks to their devices and gives
each a pair of hooks: its inputs move to its device before `forward`, its outputs move back to
the run's device after. Model steps, objectives and sampling code stay unchanged (they call
the networks as before), gradients flow across the copies, and the weights' names (state
dicts, checkpoints, model directories) do not change. The hooks are kept by `copy.deepcopy`,
so EMA copies live beside their network.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gankit.engine.distributed import DistContext, resolve_device
from gankit.errors import ConfigError


def move(value: Any, device: torch.device) -> Any:
    """`value` with every tensor inside (tuples, lists, dicts) on `device`."""
    if torch.is_tensor(value):
        return value.to(device, non_blocking=True)
    if isinstance(value, tuple | list):
        return type(value)(move(v, device) for v in value)
    if isinstance(value, dict):
        return {k: move(v, device) for k, v in value.items()}
    return value


def check_placement(
    placement: dict[str, str], networks: dict[str, nn.Module], ctx: DistContext
) -> dict[str, torch.device]:
    """The devices of `train.placement`, checked: known network names, devices that exist,
    and no torchrun (data and model parallelism together are not supported yet)."""
    unknown = sorted(set(placement) - set(networks))
    if unknown:
        raise ConfigError(
            f"train.placement names {', '.join(map(repr, unknown))}; this model's networks "
            f"are {', '.join(networks)}"
        )
    if placement and ctx.enabled:
        raise ConfigError(
            "train.placement (model parallelism) cannot be combined with torchrun yet: "
            "run one process, or drop train.placement"
        )
    devices = {}
    for name, device_name in placement.items():
        try:
            device = resolve_device(device_name)
        except RuntimeError as exc:  # torch.device('nonsense')
            raise ConfigError(f"train.placement.{name} = {device_name!r}: {exc}") from exc
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(
                f"train.placement.{name} = {device_name!r}: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        devices[name] = device
    return devices


def place(module: nn.Module, device: torch.device, home: torch.device) -> nn.Module:
    """Move `module` to `device`; its inputs follow it there and its outputs come back `home`."""
    module.to(device)

    def inputs_to_device(_module, args, kwargs):
        return move(args, device), move(kwargs, device)

    def outputs_home(_module, _args, output):
        return move(output, home)

    module.register_forward_pre_hook(inputs_to_device, with_kwargs=True)
    module.register_forward_hook(outputs_home)
    return module


def place_networks(model: Any, placement: dict[str, str], ctx: DistContext) -> dict[str, str]:
    """Apply `train.placement` to an attached model; returns name -> device actually used."""
    devices = check_placement(placement, model.networks, ctx)
    for name, device in devices.items():
        place(model.networks[name], device, ctx.device)
    return {name: str(d) for name, d in devices.items()}
