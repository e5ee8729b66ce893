"""Model classes: the EASE family (one closed form) and L3AE."""
from .base import MODEL_REGISTRY, ItemItemModel
from .ease import DLAE, EASE, EDLAE, LAE, MODELS, RDLAE, RLAE, LinearAutoencoder

__all__ = ["ItemItemModel", "LinearAutoencoder", "LAE", "EASE", "DLAE", "EDLAE", "RLAE", "RDLAE",
           "MODELS", "MODEL_REGISTRY"]
