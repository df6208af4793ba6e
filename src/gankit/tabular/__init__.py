"""Tables: `GANImputer` (missing values) and `TabularGAN` (synthetic tables)."""

from gankit.tabular.imputer import GANImputer, ImputationWarning

__all__ = ["GANImputer", "ImputationWarning"]
