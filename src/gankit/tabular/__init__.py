"""Tables: `GANImputer` and `MIWAEImputer` (missing values), `TabularGAN` and `TabularVAE`
(synthetic tables)."""

from gankit.tabular.imputer import GANImputer, ImputationWarning
from gankit.tabular.miwae import MIWAEImputer
from gankit.tabular.synthesizer import TabularGAN
from gankit.tabular.tvae import TabularVAE

__all__ = ["GANImputer", "ImputationWarning", "MIWAEImputer", "TabularGAN", "TabularVAE"]
