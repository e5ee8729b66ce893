"""The model catalogue: every model class registers itself once, everything else reads it.

A model class declares (see :class:`lae_fast.models.base.ItemItemModel`) its
``name`` (the ``--model`` value of the CLI and the name written into model
files), a one-line ``summary``, its ``hyperparameters`` (in ``__init__``
order, each with a line of help in ``param_help``), the family values it
pins (``fixed``) and whether ``fit`` takes item embeddings. The CLI choices
and flags, the tuner's presets, ``bench fit``, the plots, the Dask fit and
the contract tests are all derived from this table: adding a model is adding
a class.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, Mapping, Optional, Tuple, Type

from ..io import ModelFileError

__all__ = ["MODEL_REGISTRY", "register", "get_model_class", "model_names", "build_model", "hyperparameter_help",
           "class_for_file", "takers"]

#: model name -> class, in registration order
MODEL_REGISTRY: Dict[str, Type[Any]] = {}

#: names that files written by lae-fast 0.1.x used for what is now another name
_LEGACY_FILE_NAMES = {"lae": "family", "lae-l2": "lae"}


def register(cls: Type[Any]) -> Type[Any]:
    """Class decorator: add a model to the catalogue after checking its declaration.

    Raises
    ------
    TypeError
        The declaration is incomplete or disagrees with ``__init__`` (a hyper-parameter
        that ``__init__`` does not take, a name already used, help missing).
    """
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} must declare a non-empty class attribute name = '...'")
    if name in MODEL_REGISTRY and MODEL_REGISTRY[name] is not cls:
        raise TypeError(f"model name {name!r} of {cls.__name__} is already used by {MODEL_REGISTRY[name].__name__}")
    taken = inspect.signature(cls.__init__).parameters
    for param in cls.hyperparameters + cls.options:
        if param not in taken:
            raise TypeError(f"{cls.__name__} declares {param!r} but its __init__ does not take it")
        if param in cls.hyperparameters and param not in cls.param_help:
            raise TypeError(f"{cls.__name__} declares hyper-parameter {param!r} without a line in param_help")
    if not cls.summary:
        raise TypeError(f"{cls.__name__} must declare a one-line summary")
    cls.model_name = name  # the attribute name of lae-fast 0.1, kept for code that reads it
    MODEL_REGISTRY[name] = cls
    return cls


def get_model_class(name: str) -> Type[Any]:
    """The class registered under ``name``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    """
    try:
        return MODEL_REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODEL_REGISTRY)}") from None


def model_names(*, base: Optional[Type[Any]] = None, takes_embeddings: Optional[bool] = None,
                from_gram: Optional[bool] = None) -> Tuple[str, ...]:
    """Registered names, in registration order, optionally filtered.

    Parameters
    ----------
    base : class, optional
        Only subclasses of this class (e.g. the EASE family's ``LinearAutoencoder``).
    takes_embeddings : bool, optional
        Only models whose ``fit`` does (True) or does not (False) take item embeddings.
    from_gram : bool, optional
        Only models that can (True) or cannot (False) be fitted from a Gram matrix
        (``fit_gram``; the Dask fit sums the Gram over user shards).
    """
    out = []
    for name, cls in MODEL_REGISTRY.items():
        if base is not None and not issubclass(cls, base):
            continue
        if takes_embeddings is not None and cls.takes_embeddings != takes_embeddings:
            continue
        if from_gram is not None and cls.solves_from_gram() != from_gram:
            continue
        out.append(name)
    return tuple(out)


def hyperparameter_help() -> Dict[str, str]:
    """Every hyper-parameter of the catalogue -> its help line (the first model declaring it wins)."""
    out: Dict[str, str] = {}
    for cls in MODEL_REGISTRY.values():
        for param in cls.hyperparameters:
            out.setdefault(param, cls.param_help[param])
    return out


def takers(param: str) -> Tuple[str, ...]:
    """Names of the models that take hyper-parameter ``param``."""
    return tuple(name for name, cls in MODEL_REGISTRY.items() if param in cls.hyperparameters)


def build_model(name: str, params: Mapping[str, Any], **options: Any) -> Any:
    """Instantiate model ``name`` from hyper-parameters (None values mean "the default") and options.

    Raises
    ------
    ValueError
        Unknown model, or a hyper-parameter this model does not take (the message
        names the models that do).
    """
    cls = get_model_class(name)
    given = {k: v for k, v in params.items() if v is not None}
    for param in given:
        if param not in cls.hyperparameters:
            others = ", ".join(takers(param)) or "none"
            raise ValueError(f"model {name!r} has no hyper-parameter {param!r}; models with it: {others}")
    opts = {k: v for k, v in options.items() if v is not None}
    for option in opts:
        if option not in cls.options:
            others = ", ".join(n for n, c in MODEL_REGISTRY.items() if option in c.options) or "none"
            raise ValueError(f"model {name!r} has no option {option!r}; models with it: {others}")
    return cls(**given, **opts)


def class_for_file(meta: Mapping[str, Any], source: str) -> Type[Any]:
    """The class a model file's header names (files of lae-fast 0.1.x use their old names).

    Raises
    ------
    lae_fast.io.ModelFileError
        The file names no registered model.
    """
    name = meta.get("model")
    version = meta.get("lae_fast_version")
    if isinstance(version, str) and version.startswith("0.1.") and name in _LEGACY_FILE_NAMES:
        name = _LEGACY_FILE_NAMES[name]
    if not isinstance(name, str) or name not in MODEL_REGISTRY:
        raise ModelFileError(f"{source}: unknown model type {name!r}")
    return MODEL_REGISTRY[name]
