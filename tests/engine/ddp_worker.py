"""Run by torchrun from test_distributed.py: train, then save this rank's weights."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from gankit.config import load_config
from gankit.engine.distributed import shutdown
from gankit.engine.runs import build_trainer

out = Path(sys.argv[1])
torch.set_num_threads(1)
trainer = build_trainer(load_config(None, sys.argv[2:]), out / "run")
trainer.fit()
rank = trainer.ctx.rank
networks = trainer.model.networks
weights = dict(networks["g"].state_dict())
weights.update({f"discriminator.{k}": v for k, v in networks["d"].state_dict().items()})
save_file({k: v.contiguous() for k, v in weights.items()}, str(out / f"rank{rank}.safetensors"))
shutdown(trainer.ctx)
