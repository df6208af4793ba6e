"""Run on two ranks by test_families_ddp.py: train each family of families.json in turn in one
process group and save this rank's parameters of every network; then, out of the group, train
this rank's share of the one-process references (`Halves` around every network) and save
theirs, so the two references run in parallel."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from gankit.config import load_config
from gankit.engine.distributed import DistContext, shutdown
from gankit.engine.runs import build_trainer
from gankit.engine.trainer import Trainer
from gankit.registry import family


class Halves(nn.Module):
    """`module` run on each half of the batch, outputs concatenated: in one process, what two
    DDP ranks compute (per-half batch-norm statistics). Named like DDP's wrapper (`module`) so
    code that unwraps DDP unwraps it too."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor | None, ...]:
        parts = [self.module(*half) for half in zip(*(a.chunk(2) for a in args), strict=True)]
        if isinstance(parts[0], tuple):  # a projection D's class logits are None
            return tuple(None if o[0] is None else torch.cat(o) for o in zip(*parts, strict=True))
        return torch.cat(parts)


def parameters(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{net}.{key}": value.detach().contiguous()
        for net, module in trainer.model.networks.items()
        for key, value in module.named_parameters()
    }


def one_process(recipe: str, overrides: list[str]) -> Trainer:
    """`build_trainer` in a single process (no group), with `Halves` around every network."""
    cfg = load_config(recipe, overrides)
    torch.manual_seed(cfg.train.seed)
    model, provider = family(cfg.model.family).build(cfg)
    trainer = Trainer(model, provider, cfg.train, None, ctx=DistContext())
    model.attach(trainer.device, Halves, trainer.autocast)
    return trainer


out = Path(sys.argv[1])
torch.set_num_threads(1)
plan = json.loads((out / "families.json").read_text())
ctx = None
for name, (recipe, overrides) in plan["ddp"].items():
    trainer = build_trainer(load_config(recipe, overrides), None)  # no files: weights below
    trainer.fit()
    ctx = trainer.ctx
    save_file(parameters(trainer), str(out / f"{name}.rank{ctx.rank}.safetensors"))
rank = ctx.rank
shutdown(ctx)  # the references are single processes: no collective may reach the group
for name in plan["reference"][rank::2]:
    trainer = one_process(*plan["ddp"][name])
    trainer.fit()
    save_file(parameters(trainer), str(out / f"{name}.single.safetensors"))
