"""lae-fast: linear-autoencoder recommenders with a compiled core."""
from ._version import __version__

from ._compiled import require_kernels

require_kernels(__name__, __path__[0])  # a source tree without kernels: say what to do

from ._threads import resolve_num_threads
from ._validation import NotFittedError
from .data import DataFormatError, Interactions, load_interactions
from .gram import gram
from .io import ModelFileError
from .linalg import spd_inverse_inplace
from .models import (DLAE, EASE, EDLAE, LAE, L3AE, RDLAE, RLAE, EASEText, ItemItemModel, LinearAutoencoder,
                     TextSimilarity)
from .ranking import topk
from .serving import Recommender, load_model

__all__ = [
    "__version__", "LAE", "EASE", "DLAE", "EDLAE", "RLAE", "RDLAE", "LinearAutoencoder", "ItemItemModel",
    "L3AE", "EASEText", "TextSimilarity",
    "gram", "topk", "spd_inverse_inplace", "resolve_num_threads", "NotFittedError", "ModelFileError",
    "load_model", "Interactions", "load_interactions", "DataFormatError", "Recommender",
]
