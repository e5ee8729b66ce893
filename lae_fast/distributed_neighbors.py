"""The neighbourhood route on dask: candidate lists summed over user shards, column blocks solved on the workers.

For a catalogue whose n×n Gram fits no machine (docs/SCALE.md). Nothing of size n×n
exists anywhere:

1. each shard is read once, on a worker, into its binary interactions in the common
   item space, and stays there;
2. for each block of items [a, b) every shard gives its rows of G restricted to the
   block, :math:`X_s[:, a{:}b]^\\top X_s` (sparse), the rows are summed over the shards
   in a tree, and a task keeps each item's top candidates by cosine
   (:func:`lae_fast.neighbors.candidates_from_rows`); the driver holds only the lists
   (n × width);
3. the lists and the model are shipped to the workers once, and the columns are solved
   in blocks there (:func:`lae_fast.models.base.solve_column_block`); the driver joins
   the blocks into B.

Co-occurrence counts are integers, exact in float64 whatever the order of the sums, and
each column is solved alone, so the model is bit for bit the one :meth:`fit` gives on the
same lists in one process (``tests/test_distributed_neighbors.py``).

Entry point: :func:`lae_fast.distributed.fit_distributed` with a model of the
neighbourhood route (``neighbors=m``, or the automatic switch when the dense n×n does
not fit the driver).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from . import distributed as dist
from . import neighbors as nbr
from ._memory import check_fits_in_memory
from .data import DataFormatError
from .models.base import ItemItemModel, progress_callback

#: Entries (rows × items) of one block of co-occurrence rows, as if dense: bounds a block's size
#: however popular its items are (the sparse rows hold at most this many).
BLOCK_ENTRIES = 1 << 25


def items_per_block(n_items: int) -> int:
    """Items whose co-occurrence rows one task sums: ``BLOCK_ENTRIES / n``, at least 64, at most n."""
    return int(min(n_items, max(64, BLOCK_ENTRIES // max(n_items, 1))))


# -- tasks ----------------------------------------------------------------------------------------

def _shard_matrix(data: Any, name: str, kind: str, options: Any, item_ids: np.ndarray,
                  num_threads: Optional[int], shares: Dict[str, int],
                  check_users: bool) -> Optional[Tuple[sp.csr_matrix, sp.csc_matrix, Optional[np.ndarray], str]]:
    """One task: a shard's binary interactions in the item space, by user and by item (both kept on its worker:
    the item-major copy makes each block's columns a slice, not a pass over all of X), and its sorted user ids."""
    inter = dist._load(data, name, kind, options, dist._task_threads(num_threads, shares))
    if inter is None:
        return None
    X, _ = dist._to_item_space(inter, item_ids, name, strict=True)
    X = sp.csr_matrix((np.ones(X.nnz), X.indices, X.indptr), shape=X.shape)  # counts, exact in float64
    return X, X.tocsc(), (np.sort(inter.user_ids) if check_users else None), name


def _shard_summary(part: Optional[tuple]) -> Optional[tuple]:
    """What the driver needs of a shard: users, nnz, its item counts, its user ids and name (never X)."""
    if part is None:
        return None
    X, C, users, name = part
    return X.shape[0], X.nnz, np.diff(C.indptr), users, name


def _block_rows(part: Optional[tuple], first: int, stop: int) -> Optional[sp.csr_matrix]:
    """One task: this shard's rows first..stop-1 of G, X[:, first:stop]ᵀ X (sparse, exact counts)."""
    if part is None:
        return None
    X, C = part[0], part[1]
    return (C[:, first:stop].T.tocsr() @ X).tocsr()


def _add_rows(a: Optional[sp.csr_matrix], b: Optional[sp.csr_matrix]) -> Optional[sp.csr_matrix]:
    if a is None or b is None:
        return b if a is None else a
    return a + b


def _block_lists(rows: Optional[sp.csr_matrix], first: int, stop: int, item_counts: np.ndarray, width: int,
                 n_items: int, num_threads: Optional[int], shares: Dict[str, int]) -> Tuple[np.ndarray, np.ndarray]:
    """One task: the candidate lists of items first..stop-1 from their summed rows of G."""
    if rows is None:
        rows = sp.csr_matrix((stop - first, n_items))
    return nbr.candidates_from_rows(rows, first, item_counts, width,
                                    num_threads=dist._task_threads(num_threads, shares))


# -- driver ---------------------------------------------------------------------------------------

def _check_disjoint_users(described: Sequence[Optional[tuple]]) -> None:
    """A user in two shards would lose the cross terms of its history: refused, as for the Gram."""
    acc = None
    for d in described:
        if d is None or d[3] is None:
            continue
        part = dist._Partial(None, d[3], d[0], d[1], [d[4]])
        acc = part if acc is None else dist._Partial(None, dist._merge_users(acc, part), acc.n_users + part.n_users,
                                                     acc.nnz + part.nnz, acc.shards + part.shards)


def _sum_tree(client: Any, futures: List[Any]) -> Any:
    """Pairwise sums of sparse row blocks, one task per add."""
    while len(futures) > 1:
        pairs = [client.submit(_add_rows, futures[i], futures[i + 1], pure=False)
                 for i in range(0, len(futures) - 1, 2)]
        futures = pairs + ([futures[-1]] if len(futures) % 2 else [])
    return futures[0]


def distributed_candidates(parts: List[Any], item_counts: np.ndarray, width: int, *, client: Any,
                           num_threads: Optional[int], shares: Dict[str, int],
                           progress: Optional[Callable[[int, int], None]] = None) -> nbr.CandidateLists:
    """Top-``width`` candidate lists of every item from shards held by the workers (``parts``: one future per
    shard, see :func:`_shard_matrix`), block of items by block; identical to
    :func:`lae_fast.neighbors.cooccurrence_candidates` on the union of the shards.

    At most two blocks per dask thread are in flight, so the summed rows held at once stay bounded
    (``BLOCK_ENTRIES`` per block at most) however many blocks the catalogue has.
    """
    n = item_counts.size
    indices, counts = nbr._empty_lists(n, width)
    step = items_per_block(n)
    ranges = [(a, min(n, a + step)) for a in range(0, n, step)]
    done = 0

    def store(first: int, stop: int, lists: Tuple[np.ndarray, np.ndarray]) -> None:
        nonlocal done
        indices[first:stop], counts[first:stop] = lists
        done += stop - first
        if progress is not None:
            progress(done, n)

    if client is None:
        for first, stop in ranges:
            rows = None
            for part in parts:
                rows = _add_rows(rows, _block_rows(part, first, stop))
            store(first, stop, _block_lists(rows, first, stop, item_counts, width, n, num_threads, shares))
        return nbr.CandidateLists(indices, counts, item_counts.astype(np.float64))
    slots = sum(int(info.get("nthreads", 1)) for info in dist._workers(client).values())
    todo = iter(ranges)
    pending: Dict[Any, Tuple[int, int]] = {}
    running = dist._distributed().as_completed()

    def submit_next() -> None:
        block = next(todo, None)
        if block is None:
            return
        leaves = [client.submit(_block_rows, p, block[0], block[1], pure=False) for p in parts]
        fut = client.submit(_block_lists, _sum_tree(client, leaves), block[0], block[1], item_counts, width, n,
                            num_threads, shares, pure=False)
        pending[fut] = block
        running.add(fut)

    for _ in range(max(2, 2 * slots)):
        submit_next()
    for fut in running:
        store(*pending.pop(fut), fut.result())
        submit_next()
    return nbr.CandidateLists(indices, counts, item_counts.astype(np.float64))


def _block_mapper(client: Any) -> Callable:
    """``map_blocks`` of :meth:`~lae_fast.models.base.ItemItemModel.fit_candidates` on a dask client:
    the model, the lists and the embeddings shipped once, one task per block of columns."""

    def map_blocks(func: Callable, args: tuple, ranges: List[Tuple[int, int]],
                   progress: Optional[Callable[[int, int], None]]) -> List[Any]:
        shipped = client.scatter(list(args), broadcast=True, hash=False, direct=dist._direct(client))
        futures = {client.submit(func, *shipped, first, stop, pure=False): stop - first for first, stop in ranges}
        n = sum(futures.values())
        blocks, done = [], 0
        for fut in dist._distributed().as_completed(list(futures)):
            blocks.append(fut.result())
            done += futures.pop(fut)
            if progress is not None:
                progress(done, n)
        del shipped
        return blocks

    return map_blocks


def fit_on_lists(model: ItemItemModel, source: Any, *, client: Any = None, item_embeddings: Any = None,
                 item_ids: Any = None, user_col: str = "user", item_col: str = "item",
                 rating_col: Optional[str] = None, min_rating: Optional[float] = None,
                 num_threads: Optional[int] = None, check_users: bool = True,
                 shards_per_task: Optional[int] = None, progress: Any = None) -> ItemItemModel:
    """Fit ``model`` on its neighbourhood route from user shards without any n×n (module docstring).

    The route :meth:`fit` would take decides: the dense route, or the neighbourhood route on a
    dense G where the n×n fits this machine, are the Gram of
    :func:`lae_fast.distributed.distributed_gram` and ``fit_gram``, as for every other model.

    Parameters
    ----------
    model : ItemItemModel
        A model with the ``neighbors`` option (``neighbors=None`` takes
        ``DEFAULT_NEIGHBORS``).
    source, client, item_ids, user_col, item_col, rating_col, min_rating, num_threads, check_users
        As in :func:`lae_fast.distributed.distributed_gram` (``shards_per_task`` too, for the Gram).
    item_embeddings : array-like of shape (n_items, d), optional
        Text models: one row per item of ``item_ids``.
    progress : callable or bool, optional
        ``progress(done, total)`` for the candidate blocks, then for the column blocks.

    Returns
    -------
    model
        Fitted; ``fit_seconds_`` has ``read``, ``candidates`` and ``solve`` (wall time).
    """
    report = progress_callback(progress)
    t0 = time.perf_counter()
    options = dist._ShardOptions(user_col, item_col, rating_col, dist._min_rating(min_rating))
    shards, vocab, shares = dist._open(source, client, item_ids, options, num_threads)
    n = vocab.size
    plan = model.neighbor_plan(n, warn=True)
    if plan is None or model.dense_gram_fits(n):
        return dist.fit_from_gram(model, source, client=client, item_embeddings=item_embeddings, item_ids=vocab,
                                  user_col=user_col, item_col=item_col, rating_col=rating_col,
                                  min_rating=min_rating, num_threads=num_threads, check_users=check_users,
                                  shards_per_task=shards_per_task)
    width = plan[2]
    check_fits_in_memory(n * width * 8, what=f"the top-{width} candidate lists of {n} items on the driver")
    args = (shards[0].kind, options, vocab, num_threads, shares, check_users)
    if client is None:
        parts = [_shard_matrix(s.data, s.name, s.kind, *args[1:]) for s in shards]
        described = [_shard_summary(p) for p in parts]
    else:
        vocab_f = client.scatter(vocab, broadcast=True, hash=False, direct=dist._direct(client))
        parts = [client.submit(_shard_matrix, s.data, s.name, s.kind, options, vocab_f, num_threads, shares,
                               check_users, pure=False) for s in shards]
        described = client.gather([client.submit(_shard_summary, p, pure=False) for p in parts])
    if all(d is None for d in described):
        raise DataFormatError("every shard is empty; there are no interactions to use")
    _check_disjoint_users(described)
    item_counts = np.sum([d[2] for d in described if d is not None], axis=0).astype(np.float64)
    n_users = sum(d[0] for d in described if d is not None)
    nnz = sum(d[1] for d in described if d is not None)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    lists = distributed_candidates(parts, item_counts, width, client=client, num_threads=num_threads,
                                   shares=shares, progress=report)
    t_cand = time.perf_counter() - t0
    del parts  # the shards leave the workers' memory before the solves
    return model.fit_candidates(lists, item_ids=vocab, item_embeddings=item_embeddings, n_users=n_users, nnz=nnz,
                                seconds={"read": t_read, "candidates": t_cand},
                                map_blocks=None if client is None else _block_mapper(client), progress=report)
