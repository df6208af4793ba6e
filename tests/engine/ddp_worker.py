"""Run by torchrun from test_distributed.py: train (or `--resume` the run), then save this
rank's full weights (gathered first when FSDP shards them)."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from gankit.config import load_config
from gankit.engine.distributed import gather, shutdown
from gankit.engine.runs import build_trainer

out = Path(sys.argv[1])
torch.set_num_threads(1)
if sys.argv[2] == "--resume":  # what `gankit train --resume` does, without leaving the group
    trainer = build_trainer(load_config(out / "run" / "config.yaml", sys.argv[3:]), out / "run")
    trainer.load_checkpoint(out / "run")
else:
    trainer = build_trainer(load_config(None, sys.argv[2:]), out / "run")
trainer.fit()
rank = trainer.ctx.rank
networks = trainer.model.networks
types = sorted({type(p).__name__ for net in networks.values() for p in net.parameters()})
(out / f"rank{rank}.json").write_text(json.dumps({"types": types}))
weights = gather(dict(networks["g"].state_dict()))
weights.update({f"discriminator.{k}": v for k, v in gather(networks["d"].state_dict()).items()})
save_file({k: v.contiguous() for k, v in weights.items()}, str(out / f"rank{rank}.safetensors"))
shutdown(trainer.ctx)
