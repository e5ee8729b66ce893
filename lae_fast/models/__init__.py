"""Model classes: the EASE family (one closed form) and L3AE."""
from .base import MODEL_REGISTRY, ItemItemModel
from .ease import DLAE, EASE, EDLAE, LAE, MODELS, RDLAE, RLAE, LinearAutoencoder
from .l3ae import L3AE, EASEText, TextSimilarity

__all__ = ["ItemItemModel", "LinearAutoencoder", "LAE", "EASE", "DLAE", "EDLAE", "RLAE", "RDLAE",
           "L3AE", "EASEText", "TextSimilarity", "MODELS", "MODEL_REGISTRY"]
