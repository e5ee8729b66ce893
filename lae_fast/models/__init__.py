"""Model classes: the EASE family (one closed form, six presets) and L3AE with its text baselines.

Every public module of this package is imported here, so a model class that
registers itself (:func:`~lae_fast.models.registry.register`) in a new file
reaches the CLI, the tuner and the contract tests without any other edit.
"""
import importlib
import pkgutil

from .base import ItemItemModel
from .ease import DLAE, EASE, EDLAE, LAE, MODELS, RDLAE, RLAE, LinearAutoencoder
from .l3ae import L3AE, EASEText, TextSimilarity
from .registry import MODEL_REGISTRY, build_model, get_model_class, model_names, register

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ItemItemModel", "LinearAutoencoder", "LAE", "EASE", "DLAE", "EDLAE", "RLAE", "RDLAE",
           "L3AE", "EASEText", "TextSimilarity", "MODELS", "MODEL_REGISTRY", "register", "get_model_class",
           "model_names", "build_model"]
