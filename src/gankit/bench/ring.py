"""`gankit bench ring`: the ring of 8 Gaussians (radius 1, std 0.01) under the VEEGAN protocol.

Rows: the published VEEGAN/GDPP table; gankit's plain GAN with the protocol's networks and
budget (2×128 tanh MLPs, z 256, batch 512, Adam lr D 1e-4 / G 1e-3, 25k iterations); gankit's
best recipe (`configs/ring-best.yaml`); the self-conditioned GAN (`configs/ring-selfcond.yaml`,
sampled by the generator alone) and its ablation without conditioning; and 2,500 real draws
(the 98.9 % HQ ceiling).
"""

from __future__ import annotations

from gankit.bench.mixture import mixture_benchmark, protocol_recipes, self_conditioned_recipes
from gankit.data.toy import RING_PRESET, ring_means

PUBLISHED = [
    {"method": "GAN", "modes": 1, "hq_percent": 99.3},
    {"method": "ALI", "modes": 2.8, "hq_percent": 0.13},
    {"method": "Unrolled GAN", "modes": 7.6, "hq_percent": 35.6},
    {"method": "VEEGAN", "modes": 8, "hq_percent": 52.9},
    {"method": "WGAN-GP (GDPP paper)", "modes": 6.8, "hq_percent": 59.6},
    {"method": "GDPP-GAN", "modes": 8.0, "hq_percent": 71.7},
]
RECIPES = protocol_recipes("ring") + self_conditioned_recipes("ring")


run = mixture_benchmark(
    "ring",
    ring_means(RING_PRESET["modes"], RING_PRESET["radius"]),
    RING_PRESET["std"],
    RECIPES,
    PUBLISHED,
)
