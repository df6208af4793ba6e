"""Run by torchrun from test_distributed.py: train, then save this rank's weights."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from gankit.config import load_config
from gankit.train import Trainer
from gankit.train.distributed import shutdown

out = Path(sys.argv[1])
torch.set_num_threads(1)
trainer = Trainer(load_config(None, sys.argv[2:]), out / "run")
trainer.fit()
rank = trainer.ctx.rank
weights = dict(trainer.generator.state_dict())
weights.update({f"discriminator.{k}": v for k, v in trainer.discriminator.state_dict().items()})
save_file({k: v.contiguous() for k, v in weights.items()}, str(out / f"rank{rank}.safetensors"))
shutdown(trainer.ctx)
