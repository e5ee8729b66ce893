"""Shared small fixtures for the core test-suite (models, gram, ranking, io, threads, linalg)."""
import numpy as np
import pytest
import scipy.sparse as sp


def random_binary(n_users=60, n_items=12, density=0.3, seed=0, empty_items=(), empty_users=(),
                  dtype=np.float32):
    """Random 0/1 CSR matrix; the listed item columns and user rows hold no entries."""
    rng = np.random.default_rng(seed)
    # item popularity varies from density/4 to 2*density, so models see rare and popular items
    dens = density * np.linspace(0.25, 2.0, n_items)[rng.permutation(n_items)]
    dense = (rng.random((n_users, n_items)) < dens[None, :]).astype(dtype)
    dense[:, list(empty_items)] = 0
    dense[list(empty_users), :] = 0
    return sp.csr_matrix(dense)


def power_law(n_users=300, n_items=80, mean_len=8, alpha=1.1, seed=0):
    """Users with Poisson-many items drawn from a power-law popularity (head items are dense)."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1) ** alpha
    p /= p.sum()
    rows = []
    for _ in range(n_users):
        k = min(n_items, rng.poisson(mean_len))
        rows.append(np.sort(rng.choice(n_items, size=k, replace=False, p=p)))
    indptr = np.cumsum([0] + [r.size for r in rows])
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(indices.size, dtype=np.float32), indices, indptr),
                         shape=(n_users, n_items))


def dyadic_matrix(n, seed=0, dtype=np.float32):
    """Square matrix of multiples of 1/16 in [-4, 4]: every sum of a few rows is exact in float32,
    so scores computed in any order compare exactly (and ties really are ties)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(-64, 65, size=(n, n)) / 16.0).astype(dtype)


def rel_err(a, ref):
    """max |a - ref| / max |ref| (0/0 counts as 0)."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    scale = np.abs(ref).max() if ref.size else 0.0
    diff = np.abs(a - ref).max() if ref.size else 0.0
    return diff / scale if scale > 0 else diff


class FakeInteractions:
    """Duck-typed stand-in for lae_fast.data.Interactions: a ``.matrix`` and ``.item_ids``."""

    def __init__(self, matrix, item_ids):
        self.matrix = matrix
        self.item_ids = item_ids


@pytest.fixture
def X_small():
    """60 users x 12 items, item 5 has no users, users 3 and 7 have no items."""
    return random_binary(60, 12, 0.3, seed=1, empty_items=(5,), empty_users=(3, 7))


@pytest.fixture
def X_full():
    """60 users x 12 items, every item used."""
    X = random_binary(60, 12, 0.35, seed=2)
    assert (np.diff(X.tocsc().indptr) > 0).all()
    return X


@pytest.fixture
def make_binary():
    return random_binary


@pytest.fixture
def make_power_law():
    return power_law


@pytest.fixture
def make_dyadic():
    return dyadic_matrix


@pytest.fixture
def relerr():
    return rel_err


@pytest.fixture
def interactions_like():
    return FakeInteractions


# -- references shared by several test modules ---------------------------------------------------

def ref_topk(X, B, N, *, filter_liked=True, filter_items=None, items=None, popularity=False):
    """Scores X@B in float64 cast to float32; masked items removed; score desc then id asc; padded.

    ``popularity``: False scores every user by X@B (``lae_fast.topk``); per-item counts rank
    the users with no item by them instead, and None gives those users nothing (the cold-user
    fallback of ``model.recommend`` and ``Recommender``, lae_fast.popularity)."""
    N = min(N, B.shape[0])  # min(N, n_items) columns: the documented cap (a list cannot hold an item twice)
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    X.data[:] = 1.0
    n = B.shape[0]
    S = np.asarray(X @ np.asarray(B, dtype=np.float64)).astype(np.float32)
    allowed = np.zeros(n, bool)
    allowed[np.arange(n) if items is None else np.asarray(items, dtype=np.int64)] = True
    if filter_items is not None:
        allowed[np.asarray(filter_items, dtype=np.int64)] = False
    m = X.shape[0]
    ids = np.full((m, N), -1, dtype=np.int32)
    scores = np.full((m, N), -np.inf, dtype=np.float32)
    for u in range(m):
        ok = allowed.copy()
        if filter_liked:
            ok[X.indices[X.indptr[u]:X.indptr[u + 1]]] = False
        if popularity is not False and X.indptr[u] == X.indptr[u + 1]:
            if popularity is None:
                ok[:] = False
            else:
                S[u] = np.asarray(popularity, dtype=np.float32)
        cand = np.flatnonzero(ok)
        order = cand[np.lexsort((cand, -S[u, cand]))][:N]
        ids[u, :order.size] = order
        scores[u, :order.size] = S[u, order]
    return ids, scores


def cli_commands():
    """``[(path, command)]`` for the ``lae-fast`` group and every command under it, subgroups included."""
    import click

    from lae_fast.cli import main

    out = []

    def walk(path, cmd):
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in sorted(cmd.commands):
                walk(f"{path} {name}", cmd.commands[name])

    walk("lae-fast", main)
    return out


# -- hostile model files -------------------------------------------------------------------------

def craft_model_file(path, good, *, edit=None, raw_header=None):
    """A model file whose header was edited after writing, with every checksum recomputed.

    ``good`` is the bytes of a real model file; ``edit(header)`` mutates its parsed header
    (arrays are first moved to fixed offsets far enough to leave room for a longer header),
    or ``raw_header`` replaces the header bytes outright. What the writer would have
    refused, a crafted file can hold: only the reader's own checks stand in the way.
    """
    import hashlib
    import json

    from lae_fast import io as model_io

    prefix = model_io._PREFIX
    hlen = prefix.unpack(good[:prefix.size])[2]
    header = json.loads(good[prefix.size:prefix.size + hlen])
    data_start = 1 << 16
    payload = bytearray()
    for entry in header["arrays"].values():
        chunk = good[entry["offset"]:entry["offset"] + entry["nbytes"]]
        entry["offset"] = data_start + len(payload)
        payload += chunk + b"\0" * (-len(chunk) % 64)
    if edit is not None:
        edit(header)
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    head = prefix.pack(model_io.MAGIC, model_io.FORMAT_VERSION, len(raw), hashlib.sha256(raw).digest()) + raw
    with open(path, "wb") as fh:
        fh.write(head)
        if len(head) <= data_start:
            fh.write(b"\0" * (data_start - len(head)) + bytes(payload))
    return path


def make_fifo(path):
    """A FIFO at ``path`` with a reader held open (non-blocking): a writer that wrongly opens it
    goes through instead of blocking forever, so a regression fails the test rather than hanging it.
    Returns the reader's descriptor (closed when the test process ends)."""
    import os

    os.mkfifo(path)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


@pytest.fixture(scope="module")
def client():
    """A 2-worker dask LocalCluster (threads, one each) for the module's tests."""
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        yield c
