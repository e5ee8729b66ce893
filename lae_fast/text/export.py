"""Make an encoder folder (``model.onnx`` + ``tokenizer.json``) from a Hugging Face model, and quantise it.

:func:`export_encoder` is the only place in lae-fast that uses torch and
transformers, and only while it runs (``pip install 'lae-fast[export]'``); the
folder it writes is then used without them by
:meth:`lae_fast.text.TextEncoder.from_directory`.

:func:`quantize_encoder` turns an ONNX encoder into one with int8 weights and
int8 matrix products (onnxruntime dynamic quantisation, one scale per output
channel), about twice as fast on CPUs at a cosine of about 0.99 to the
original embeddings. It needs onnxruntime and ``onnx``, not torch.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..io import atomic_path, check_target
from .encoder import EncoderFileError, require

PathLike = Union[str, "os.PathLike[str]"]

_EXPORT_EXTRA = "export"


def export_encoder(hf_model_dir: PathLike, output_dir: PathLike, *, quantize: bool = False,
                   opset: int = 17) -> Path:
    """Export a Hugging Face sentence-embedding model to an encoder folder.

    Parameters
    ----------
    hf_model_dir : str or path-like
        A local Hugging Face model folder (``config.json``, the weights and a
        fast tokenizer), e.g. a ``sentence-transformers`` checkpoint.
    output_dir : str or path-like
        Created if needed; receives ``model.onnx`` and ``tokenizer.json``.
    quantize : bool, default=False
        Also apply :func:`quantize_encoder` (int8 weights, per channel); the
        folder then holds only the quantised ``model.onnx``.
    opset : int, default=17
        ONNX opset of the export.

    Returns
    -------
    Path
        ``output_dir``, ready for ``TextEncoder.from_directory``.

    Raises
    ------
    ImportError
        torch or transformers is not installed (``pip install 'lae-fast[export]'``).
    FileNotFoundError
        ``hf_model_dir`` is not a folder.
    RuntimeError
        The exported graph does not reproduce the torch model's output.

    Notes
    -----
    The graph takes ``input_ids``, ``attention_mask`` (and ``token_type_ids``
    when the model's ``forward`` accepts them), int64 ``[batch, sequence]``
    with both axes dynamic, and returns ``last_hidden_state``
    ``[batch, sequence, d]``; pooling and normalisation stay in
    :class:`~lae_fast.text.TextEncoder`.
    """
    source = Path(hf_model_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"Hugging Face model folder {str(source)!r} does not exist or is not a folder")
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < 11:
        raise ValueError(f"opset must be an integer >= 11, got {opset!r}")
    torch = require("torch", _EXPORT_EXTRA, "export_encoder")
    transformers = require("transformers", _EXPORT_EXTRA, "export_encoder")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "tokenizer.json"):  # refuse a bad target before the slow export
        check_target(out / name)

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(source), use_fast=True)
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{source} has no fast tokenizer (tokenizer.json), which lae-fast needs at run time; "
                         "convert it with transformers (AutoTokenizer.from_pretrained(..., use_fast=True)."
                         "save_pretrained(...)) first")
    with atomic_path(out / "tokenizer.json") as tmp:
        tokenizer.backend_tokenizer.save(tmp)
    model = transformers.AutoModel.from_pretrained(str(source))
    model.eval()

    accepted = inspect.signature(model.forward).parameters
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if "token_type_ids" in accepted else [])
    sample = tokenizer(["A short sentence.", "A somewhat longer sentence, to have some padding."],
                       padding=True, return_tensors="pt")
    args = tuple(sample[n] if n in sample else torch.zeros_like(sample["input_ids"]) for n in names)

    class _Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors))).last_hidden_state

    wrapper = _Hidden(model)
    dynamic = {n: {0: "batch", 1: "sequence"} for n in names}
    dynamic["last_hidden_state"] = {0: "batch", 1: "sequence"}
    options = dict(input_names=names, output_names=["last_hidden_state"], dynamic_axes=dynamic,
                   opset_version=opset, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        options["dynamo"] = False  # the TorchScript exporter honours dynamic_axes as given
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        plain = Path(tmp) / "model.onnx"
        with torch.no_grad():
            torch.onnx.export(wrapper, args, str(plain), **options)
            expected = wrapper(*args).numpy()
        ort = require("onnxruntime", "text", "export_encoder")
        session = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])
        got = session.run(["last_hidden_state"], {n: a.numpy().astype(np.int64) for n, a in zip(names, args)})[0]
        error = float(np.max(np.abs(got - expected)))
        if not np.isfinite(error) or error > 1e-3 * max(1.0, float(np.max(np.abs(expected)))):
            raise RuntimeError(f"the ONNX export of {source} differs from the torch model by {error:.3g} "
                               f"(max abs); try another opset (now {opset})")
        if quantize:
            quantize_encoder(plain, out / "model.onnx")
        else:
            with atomic_path(out / "model.onnx") as tmp:
                os.replace(plain, tmp)
    return out


def quantize_encoder(model_path: PathLike, output_path: PathLike, *, per_channel: bool = True,
                     reduce_range: bool = True) -> Path:
    """Dynamic int8 quantisation of an ONNX encoder (weights per channel, activations per batch).

    Constant sub-graphs are folded first, so a model that stores int8
    weights but dequantises them to float at run time (as the default
    all-MiniLM-L6-v2 package does) gets real int8 matrix products
    (``MatMulInteger``) instead of float ones.

    Parameters
    ----------
    model_path : str or path-like
        The ONNX model to quantise.
    output_path : str or path-like
        Where the quantised model goes (its folder must exist); may not be
        ``model_path`` itself.
    per_channel : bool, default=True
        One weight scale per output channel (more accurate than one per
        tensor).
    reduce_range : bool, default=True
        7-bit weights. x86 CPUs without VNNI (AVX2, plain AVX-512) compute
        u8×s8 products with an instruction that saturates; with full-range
        per-channel weights that costs up to ~13% error on some outputs
        (measured here on a random 64×32 MatMul, against ~1.4% with 7-bit
        weights). The file may run on any CPU, so the safe range is the
        default; pass False only for VNNI or ARM targets.

    Returns
    -------
    Path
        ``output_path``.

    Raises
    ------
    ImportError
        onnxruntime's quantisation tools or ``onnx`` are missing.
    EncoderFileError
        ``model_path`` cannot be loaded or quantised.
    """
    src, dst = Path(model_path), Path(output_path)
    if not src.is_file():
        raise FileNotFoundError(f"ONNX model {str(src)!r} does not exist")
    if src.resolve() == dst.resolve():
        raise ValueError("output_path must differ from model_path (quantisation reads the original)")
    check_target(dst)
    ort = require("onnxruntime", "text", "quantize_encoder")
    require("onnx", _EXPORT_EXTRA, "quantize_encoder")
    quantization = require("onnxruntime.quantization", _EXPORT_EXTRA, "quantize_encoder")
    work = Path(tempfile.mkdtemp(prefix="lae-fast-quantize-", dir=dst.parent))
    try:
        folded = work / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # portable ops only
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        try:
            ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EncoderFileError(f"ONNX model {str(src)!r} cannot be loaded by onnxruntime "
                                   f"({type(exc).__name__}: {str(exc).strip()[:300]})") from exc
        partial = work / "quantized.onnx"
        try:
            with _quiet_preprocess_hint():
                quantization.quantize_dynamic(str(folded), str(partial), per_channel=per_channel,
                                              reduce_range=reduce_range,
                                              weight_type=quantization.QuantType.QInt8)
        except Exception as exc:
            raise EncoderFileError(f"onnxruntime could not quantise {str(src)!r} "
                                   f"({type(exc).__name__}: {str(exc).strip()[:300]})") from exc
        with atomic_path(dst) as tmp:
            os.replace(partial, tmp)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dst


class _DropPreprocessHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "consider to run pre-processing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_preprocess_hint():
    """Hide onnxruntime's "run pre-processing first" warning: the constant folding above is that step."""
    hint = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)
