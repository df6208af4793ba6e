"""Run by torchrun from test_families_ddp.py: train each family of families.json in turn in one
process group, then save this rank's parameters of every network."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from gankit.config import load_config
from gankit.engine.distributed import shutdown
from gankit.engine.runs import build_trainer

out = Path(sys.argv[1])
torch.set_num_threads(1)
trainer = None
for name, (recipe, overrides) in json.loads((out / "families.json").read_text()).items():
    trainer = build_trainer(load_config(recipe, overrides), None)  # no files: weights below
    trainer.fit()
    weights = {
        f"{net}.{key}": value.detach().contiguous()
        for net, module in trainer.model.networks.items()
        for key, value in module.named_parameters()
    }
    save_file(weights, str(out / f"{name}.rank{trainer.ctx.rank}.safetensors"))
if trainer is not None:
    shutdown(trainer.ctx)
