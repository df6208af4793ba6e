"""Tables: `GANImputer` (missing values) and `TabularGAN` (synthetic tables)."""

from gankit.tabular.imputer import GANImputer, ImputationWarning
from gankit.tabular.synthesizer import TabularGAN

__all__ = ["GANImputer", "ImputationWarning", "TabularGAN"]
