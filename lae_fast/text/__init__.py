"""Item texts to item embeddings, without torch: ONNX encoders, text files, an on-disk cache.

Importing this package needs neither onnxruntime nor tokenizers; they are
imported when an encoder is built (``pip install 'lae-fast[text]'``).
"""
from .encoder import (EncoderFileError, EncoderNotFoundError, TextEncoder, default_encoder,
                      default_model_paths)
from .export import export_encoder, quantize_encoder
from .items import (EmbeddingReport, ItemTextError, align_rows, align_texts, embed_items, load_embeddings,
                    load_item_texts, save_embeddings)

__all__ = [
    "TextEncoder", "default_encoder", "default_model_paths", "EncoderNotFoundError", "EncoderFileError",
    "load_item_texts", "align_texts", "embed_items", "EmbeddingReport", "ItemTextError",
    "save_embeddings", "load_embeddings", "align_rows",
    "export_encoder", "quantize_encoder",
]
