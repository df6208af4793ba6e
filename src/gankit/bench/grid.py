"""`gankit bench grid`: the 5×5 grid of Gaussians (spacing 2, std 0.05), VEEGAN protocol.

Rows: the published VEEGAN/GDPP table; gankit's plain GAN with the protocol's networks and
budget (2×128 tanh MLPs, z 256, batch 512, Adam lr D 1e-4 / G 1e-3, 25k iterations); gankit's
best recipe (`configs/grid-best.yaml`); the self-conditioned GAN (`configs/grid-selfcond.yaml`,
sampled by the generator alone) and its ablation without conditioning; and 2,500 real draws
(the 98.9 % HQ ceiling).
"""

from __future__ import annotations

from gankit.bench.mixture import mixture_benchmark, protocol_recipes, self_conditioned_recipes
from gankit.data.toy import GRID_PRESET, grid_means

PUBLISHED = [
    {"method": "GAN", "modes": 3.3, "hq_percent": 0.5},
    {"method": "ALI", "modes": 15.8, "hq_percent": 1.6},
    {"method": "Unrolled GAN", "modes": 23.6, "hq_percent": 16},
    {"method": "VEEGAN", "modes": 24.6, "hq_percent": 40},
    {"method": "WGAN-GP (GDPP paper)", "modes": 24.2, "hq_percent": 28.7},
    {"method": "GDPP-GAN", "modes": 24.8, "hq_percent": 68.5},
]
RECIPES = protocol_recipes("grid") + self_conditioned_recipes("grid")


run = mixture_benchmark(
    "grid",
    grid_means(GRID_PRESET["size"], GRID_PRESET["spacing"]),
    GRID_PRESET["std"],
    RECIPES,
    PUBLISHED,
)
