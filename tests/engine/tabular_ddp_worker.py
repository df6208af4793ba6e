"""Run by torchrun from test_distributed.py: fit a tiny TabularGAN, save this rank's weights."""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import save_file

from gankit.tabular import TabularGAN

out = Path(sys.argv[1])
torch.set_num_threads(1)
rng = np.random.default_rng(0)
df = pd.DataFrame({"x": rng.normal(size=80), "c": rng.choice(["a", "b"], 80)})
model = TabularGAN(n_steps=5, hidden=(16,), z_dim=4, batch_size=20, pac=2, random_state=0)
model.fit(df, ["c"])
rank = int(__import__("os").environ["RANK"])
weights = {f"g.{k}": v for k, v in model.model_.networks["g"].state_dict().items()}
weights.update({f"d.{k}": v for k, v in model.model_.networks["d"].state_dict().items()})
save_file({k: v.contiguous() for k, v in weights.items()}, str(out / f"tab{rank}.safetensors"))
