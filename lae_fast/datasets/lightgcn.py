"""LightGCN-style folders: ``train.txt`` + ``test.txt``, one user and their items per line."""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np
import scipy.sparse as sp

from .._validation import check_scalar
from ..data import DataFormatError, Interactions
from ..evaluation import EvalSet, Split, weak_split
from ..data.interactions import PathLike
from ._files import _Files, _guess_sep


def _read_adjacency(files: _Files, member: str) -> sp.csr_matrix:
    """``user item item ...`` lines -> CSR with rows indexed by user id (shape grown later)."""
    label = files.label(member)
    rows: List[np.ndarray] = []
    cols: List[np.ndarray] = []
    seen: Dict[int, int] = {}
    try:
        with files.open(member, "utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                fields = line.split()
                if not fields:
                    continue
                try:
                    ids = np.array([int(f) for f in fields], dtype=np.int64)
                except ValueError:
                    bad = next(f for f in fields if not f.lstrip("+-").isdigit())
                    raise DataFormatError(
                        f"{label}: line {lineno}: {bad!r} is not an integer id; LightGCN files hold "
                        f"'user item item ...' (space-separated integers) per line: {line.strip()[:80]!r}"
                        f"{_guess_sep(line, ' ')}; fix or remove that line") from None
                if ids.min() < 0:
                    raise DataFormatError(f"{label}: line {lineno}: negative id {int(ids.min())}; ids are "
                                          "0-based row/column numbers")
                user = int(ids[0])
                if user in seen:
                    raise DataFormatError(f"{label}: line {lineno}: user {user} already has a line "
                                          f"(line {seen[user]}); merge the two lines")
                seen[user] = lineno
                rows.append(np.full(ids.size - 1, user, dtype=np.int64))
                cols.append(ids[1:])
    except UnicodeDecodeError:
        raise DataFormatError(f"{label}: is not text; LightGCN files hold 'user item item ...' lines") from None
    if not seen:
        raise DataFormatError(f"{label}: is empty; LightGCN files hold one 'user item item ...' line per user")
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    shape = (max(seen) + 1, int(c.max()) + 1 if c.size else 0)
    return sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=shape)


def read_lightgcn(path: PathLike, *, val_fraction: float = 0.0, random_state: Any = 0):
    """Read a LightGCN-style split: ``train.txt`` and ``test.txt``.

    Parameters
    ----------
    path : str or path-like
        A folder (or zip archive) holding ``train.txt`` and ``test.txt``, or
        the path of either (the other must sit next to it). Each line is ``user item item ...``: 0-based integer ids
        separated by spaces (the Gowalla / Yelp2018 / Amazon-Book files of
        the LightGCN code); a line with only a user id is a user without items.
    val_fraction : float in [0, 1), default=0.0
        The files carry no validation set. With 0, ``split.val`` has no
        targets (tuning then refuses it) and ``split.train`` is train.txt
        exactly; with e.g. 0.1 each user's train.txt items are split at random
        90/10 (as :func:`lae_fast.evaluation.weak_split`, keeping at least one
        train item), ``split.train`` is the 90% and ``split.val`` the 10%.
    random_state : None, int or numpy.random.Generator, default=0
        Seed of that validation split.

    Returns
    -------
    lae_fast.evaluation.Split
        ``protocol='weak'``; ``n_users`` and ``n_items`` are the largest ids of
        both files plus one; ``test.targets`` is test.txt and ``test.inputs``
        (like ``val.inputs``) is ``split.train``, whose items are masked.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    DataFormatError
        A missing file, a non-integer or negative id, or a user with two lines;
        the message names the file and the line.
    """
    val_fraction = check_scalar(val_fraction, name="val_fraction", low=0.0, high=1.0, high_inclusive=False)
    with _Files(path, primary_as="train.txt") as files:
        fix = "LightGCN data folders hold train.txt and test.txt side by side"
        train = _read_adjacency(files, files.require("train.txt", fix))
        test = _read_adjacency(files, files.require("test.txt", fix))
    shape = (max(train.shape[0], test.shape[0]), max(train.shape[1], test.shape[1]))
    train.resize(shape)
    test.resize(shape)
    train, test = (Interactions(m).matrix for m in (train, test))  # canonical, binary float32
    users = np.arange(shape[0], dtype=np.int64)
    parts = weak_split(train, ratios=(1.0 - val_fraction, val_fraction, 0.0), random_state=random_state)
    return Split(train=parts.train, val=parts.val, test=EvalSet(inputs=parts.train, targets=test, users=users),
                 protocol="weak")
