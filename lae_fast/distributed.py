"""Beyond one machine: the Gram and all-user ranking over user-partitioned shards, on Dask.

Two steps of a linear autoencoder grow with the number of users: the Gram
:math:`G = X^T X = \\sum_u x_u x_u^T` (O(nnz) work) and ranking every user
(O(users × history × n)). Both split over users exactly, so they run on an
existing engine, `dask.distributed <https://distributed.dask.org>`_; the n×n
inverse, whose size depends only on the catalogue, stays on the driver.

* :func:`distributed_gram` reduces each shard with the compiled Gram kernel on
  the worker that reads it (a task adds a few shards into one n×n buffer, by
  default one task per dask thread) and sums the partial Grams in a tree of dask
  tasks (pairs taken ``as_completed``, adds prioritised so few n×n partials are
  alive at once); the root comes to the driver directly from its worker, and
  :func:`fit_distributed` runs the normal closed form
  (:meth:`lae_fast.LinearAutoencoder.fit_gram`) there.
* :func:`recommend_all` ships B once per worker (``Client.scatter(broadcast=True)``)
  or lets each worker memory-map the model file from shared storage, ranks each
  shard with the compiled top-k kernel and writes one parquet file per shard with
  columns ``user, rank, item, score``.

Sources (``source``): a directory (its ``*.npz`` / ``*.parquet`` files, by name),
a glob pattern, one file or a list of files, or a dask DataFrame of
``user, item`` rows (each partition a shard). npz shards are
:func:`lae_fast.data.read_npz` files that share one item space; parquet files and
DataFrame partitions hold ``user, item[, rating]`` rows with original ids (integers or
strings). Shards are read by the readers of :mod:`lae_fast.data` (``FORMATS`` for
files, :meth:`~lae_fast.data.Interactions.from_frame` for partitions), with their
options: ``user_col``, ``item_col``, ``rating_col`` and ``min_rating`` (positives
are the rows rated at least that; a shard left without any adds nothing).
**Every user's interactions must sit in one shard**: a user split
over two shards would lose the cross terms of :math:`x_u x_u^T` (checked, see
``check_users``).

``client=None`` runs the same per-shard functions in a plain loop in this
process: no cluster, no scheduler. :func:`connect` turns a ``--scheduler``
address into a client. Needs the optional extra: ``pip install 'lae-fast[dask]'``.

Exactness: partial Grams of binary data hold integer counts, and float32 holds
every integer up to :math:`2^{24} = 16{,}777{,}216` exactly, so the tree sum equals
the in-process Gram bit for bit as long as no item has more than 2^24 users
(a warning says when that is exceeded; use ``dtype=np.float64``, exact to 2^53).
"""
from __future__ import annotations

import contextlib
import glob
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.sparse as sp

from ._threads import ENV_VAR, available_cpus, resolve_num_threads
from ._validation import check_dtype, check_int, check_scalar
from ._memory import check_fits_in_memory
from .data import DataFormatError, Interactions, save_npz
from .data.npz import read_npz_item_ids
from .data.formats import FORMATS, check_options, file_format, load_interactions
from .data.frames import read_frame
from .data.interactions import NoRowsError, NoRowsLeftError
from .data.parquet import write_parquet
from .gram import gram_into
from .ids import align_items, as_ids, sorted_unique, union_ids
from .linalg import mirror_upper
from .models.base import NEIGHBORS_OPTION, ItemItemModel
from .popularity import fill_cold_rows
from .serving import load_model
from .models.registry import model_names
from .ranking import topk
from .rec_writers import RecWriter, top_rows

__all__ = [
    "INSTALL_HINT", "GramResult", "RankingResult", "connect", "list_shards", "read_shard", "save_shards",
    "distributed_gram", "fit_distributed", "recommend_all",
]

INSTALL_HINT = "pip install 'lae-fast[dask]'"
#: the formats of ``lae_fast.data.FORMATS`` a shard may have (one per source). Delimited text is left out: a
#: directory often holds other .txt files, and text would be parsed twice (the item space, then the Gram)
SHARD_FORMATS = ("npz", "parquet")
SHARD_EXTENSIONS = tuple(ext for fmt in SHARD_FORMATS for ext in FORMATS[fmt][0])
#: float32 holds every integer up to this exactly: the bound for exact Gram sums
FLOAT32_EXACT_COUNT = 2 ** 24
_SHARD_FIX = "every user's interactions must sit in one shard (e.g. shard = hash(user) % n_shards)"


# -- optional dependencies --------------------------------------------------------------------

def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"lae_fast.distributed needs dask.distributed ({exc}); {INSTALL_HINT}") from None
    return distributed


@contextlib.contextmanager
def connect(scheduler: Optional[str] = None, **cluster_kwargs: Any) -> Iterator[Any]:
    """A dask client for a ``--scheduler`` value, closed on exit.

    Parameters
    ----------
    scheduler : str, optional
        None (or ``"none"``): yields None, i.e. run in this process without dask.
        ``"local"``: start a ``LocalCluster`` of one worker process with one thread
        per CPU (the fastest local layout measured: no n×n transfers between
        workers, one B per machine); ``"local:N"``: N worker processes of one
        thread each, N at most the CPUs this process may use (more workers would
        only compete for them, and each process costs memory).
        Anything else is a scheduler address such as ``tcp://10.0.0.5:8786``.
    **cluster_kwargs
        Passed to ``LocalCluster`` (``"local"`` only), e.g. ``processes=False``.

    Yields
    ------
    distributed.Client or None
    """
    if scheduler is None or scheduler.strip().lower() in ("", "none", "in-process"):
        yield None
        return
    dd = _distributed()
    spec = scheduler.strip()
    if spec == "local" or spec.startswith("local:"):
        n_workers, threads = 1, available_cpus()
        if spec != "local":
            threads = 1
            try:
                n_workers = int(spec.split(":", 1)[1])
            except ValueError:
                n_workers = 0
            if n_workers < 1:
                raise ValueError(f"scheduler {scheduler!r}: write local:N with N >= 1 workers, e.g. local:2")
            cpus = available_cpus()
            if n_workers > cpus:
                raise ValueError(f"scheduler {scheduler!r}: this machine lets lae-fast use {cpus} CPUs, so local:N "
                                 f"takes at most N = {cpus} one-thread workers (each is a process); use local:{cpus}, "
                                 "or a dask cluster (tcp://...) for more")
        kwargs = {"n_workers": n_workers, "threads_per_worker": threads, "dashboard_address": ":0",
                  **cluster_kwargs}
        with dd.LocalCluster(**kwargs) as cluster, dd.Client(cluster) as client:
            yield client
        return
    try:
        client = dd.Client(spec, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise OSError(f"cannot reach the dask scheduler at {spec!r} ({exc}); start one with "
                      "`dask scheduler` and workers with `dask worker ADDRESS`, or use --scheduler local") from None
    with client:
        yield client


# -- shards -------------------------------------------------------------------------------------

def _is_dask_frame(source: Any) -> bool:
    return hasattr(source, "to_delayed") and hasattr(source, "npartitions") and hasattr(source, "columns")


def list_shards(source: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]) -> List[str]:
    """The shard files named by a directory, a glob pattern, one file or a list of files.

    Parameters
    ----------
    source : str, path-like or list of them
        A directory gives its ``*.npz``, ``*.parquet`` and ``*.pq`` files (sorted
        by name, not recursive); a pattern with ``*``, ``?`` or ``[`` is globbed.

    Returns
    -------
    list of str
        All of one format (npz, or parquet).

    Raises
    ------
    FileNotFoundError
        A named file or directory does not exist, or a pattern matches nothing.
    DataFormatError
        No shards found, an unsupported extension, or npz mixed with parquet.
    """
    if isinstance(source, (str, os.PathLike)):
        entries = [os.fspath(source)]
    else:
        entries = [os.fspath(s) for s in source]
        if not entries:
            raise DataFormatError("the list of shards is empty; pass at least one npz or parquet file")
    paths: List[str] = []
    for entry in entries:
        if os.path.isdir(entry):
            found = sorted(os.path.join(entry, f) for f in os.listdir(entry)
                           if f.lower().endswith(SHARD_EXTENSIONS) and not f.startswith((".", "_")))
            if not found:
                raise DataFormatError(f"{entry}: the directory holds no shard files "
                                      f"({', '.join('*' + e for e in SHARD_EXTENSIONS)})")
            paths.extend(found)
        elif glob.has_magic(entry):
            found = sorted(glob.glob(entry))
            if not found:
                raise FileNotFoundError(f"{entry}: the pattern matches no file")
            paths.extend(found)
        elif os.path.exists(entry):
            paths.append(entry)
        else:
            raise FileNotFoundError(f"{entry}: no such shard file or directory")
    kinds = {_shard_format(path) for path in paths}
    if len(kinds) > 1:
        raise DataFormatError(f"{entries[0]}: mixes {' and '.join(sorted(kinds))} shards; write all shards in "
                              "one format")
    return paths


def _shard_format(path: str) -> str:
    """The format of a shard file (one of SHARD_FORMATS), or the error naming the extensions shards have."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in SHARD_EXTENSIONS or os.path.isdir(path):
        raise DataFormatError(f"{path}: not a shard file; shards end in {', '.join(SHARD_EXTENSIONS)}")
    return file_format(path)


@dataclass(frozen=True)
class _ShardOptions:
    """How shards are read: the column options of :mod:`lae_fast.data`'s readers.

    npz files carry their own ids and no ratings: the columns do not apply to them, and ``rating_col`` /
    ``min_rating`` are refused (:meth:`check`).
    """

    user_col: str = "user"
    item_col: str = "item"
    rating_col: Optional[str] = None
    min_rating: Optional[float] = None

    def check(self, name: str, kind: str) -> None:
        """TypeError when ``rating_col`` or ``min_rating`` is given for shards whose reader does not take it."""
        if kind != "frame":
            check_options(name, kind, {"rating_col": self.rating_col, "min_rating": self.min_rating})

    def reader_options(self, kind: str, num_threads: Optional[int]) -> Dict[str, Any]:
        """The options of the reader of ``kind`` (a FORMATS name), those it takes and that are set."""
        given = {"user_col": self.user_col, "item_col": self.item_col, "rating_col": self.rating_col,
                 "min_rating": self.min_rating, "num_threads": num_threads}
        return {k: v for k, v in given.items() if v is not None and k in FORMATS[kind][2]}


def read_shard(shard: Any, *, user_col: str = "user", item_col: str = "item", rating_col: Optional[str] = None,
               min_rating: Optional[float] = None, name: Optional[str] = None) -> Interactions:
    """Read one shard into an :class:`~lae_fast.data.Interactions`, with the readers of :mod:`lae_fast.data`.

    Parameters
    ----------
    shard : str, path-like or pandas.DataFrame
        An npz file (:func:`lae_fast.data.read_npz`), a parquet file of
        ``user, item[, rating]`` rows (:func:`lae_fast.data.read_parquet`), or one
        computed partition of a dask DataFrame (:meth:`~lae_fast.data.Interactions.from_frame`).
    user_col, item_col : str, default "user", "item"
        Columns of a parquet file or DataFrame (npz files carry their own ids).
    rating_col : str, optional
        The rating column (parquet / DataFrame); found by its usual names when
        ``min_rating`` is given without it.
    min_rating : float, optional
        Keep only rows rated at least this (parquet / DataFrame).
    name : str, optional
        How errors name a DataFrame partition.

    Returns
    -------
    Interactions
        For rows: users and items are the sorted unique ids of the shard,
        duplicated pairs count once.

    Raises
    ------
    DataFormatError
        Unreadable file, missing columns, missing values, ids that are neither
        integers nor strings, no rows, or none left after ``min_rating``.
    TypeError
        ``rating_col`` / ``min_rating`` for an npz shard.
    """
    options = _ShardOptions(user_col, item_col, rating_col, _min_rating(min_rating))
    if isinstance(shard, (str, os.PathLike)):
        path = os.fspath(shard)
        kind = _shard_format(path)
        options.check(path, kind)
        return _read(path, path, kind, options, None)
    if hasattr(shard, "columns") and hasattr(shard, "__len__"):
        return _read(shard, name or "DataFrame partition", "frame", options, None)
    raise TypeError(f"a shard is an npz/parquet path or a pandas DataFrame, got {type(shard).__name__}")


def _min_rating(min_rating: Optional[float]) -> Optional[float]:
    return None if min_rating is None else check_scalar(min_rating, name="min_rating")


def save_shards(interactions: Interactions, directory: Union[str, os.PathLike], n_shards: int, *,
                format: str = "npz", compressed: bool = False) -> List[str]:
    """Split interactions by user into ``n_shards`` files that :func:`list_shards` finds.

    Users are cut into contiguous blocks of about equal interaction counts;
    files are ``part-00000.npz`` (or ``.parquet``), written atomically.

    Parameters
    ----------
    interactions : Interactions
    directory : str or path-like
        Created if missing.
    n_shards : int
        At most the number of users.
    format : {"npz", "parquet"}, default "npz"
        npz keeps the whole item space (every shard has all columns);
        parquet writes ``user, item`` rows with the original ids. Timestamps,
        when the interactions have them, are kept (a ``timestamp`` column).
    compressed : bool, default False
        Deflate npz shards (smaller, slower).

    Returns
    -------
    list of str
        The files, in user order.
    """
    if not isinstance(interactions, Interactions):
        raise TypeError(f"interactions must be an Interactions, got {type(interactions).__name__}; "
                        "wrap a matrix with Interactions.from_matrix(X) first")
    if format not in ("npz", "parquet"):
        raise ValueError(f"format must be 'npz' or 'parquet', got {format!r}")
    X = interactions.matrix
    n_shards = check_int(n_shards, name="n_shards (at most the number of users)", low=1, high=X.shape[0])
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    # cut points at equal shares of the interactions, then forced strictly increasing (no empty shard)
    cuts = np.searchsorted(X.indptr, np.linspace(0, X.nnz, n_shards + 1)[1:-1]).astype(np.int64)
    cuts = np.maximum(cuts, np.arange(1, n_shards))
    cuts = np.minimum(cuts, X.shape[0] - n_shards + np.arange(1, n_shards))
    bounds = np.concatenate([[0], cuts, [X.shape[0]]])
    paths = []
    for k in range(n_shards):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        path = os.path.join(directory, f"part-{k:05d}.{format}")
        ts = interactions.timestamps
        ts = None if ts is None else ts[X.indptr[lo]:X.indptr[hi]]
        if format == "npz":
            part = Interactions._trusted(X[lo:hi], interactions.user_ids[lo:hi], interactions.item_ids,
                                         timestamps=ts)
            save_npz(path, part, compressed=compressed)
        else:
            sub = X[lo:hi]
            users = np.repeat(interactions.user_ids[lo:hi], np.diff(sub.indptr))
            columns = {"user": users, "item": interactions.item_ids[sub.indices]}
            if ts is not None:
                columns["timestamp"] = ts
            write_parquet(path, columns)
        paths.append(path)
    return paths


# -- per-shard work (runs on the workers, or in the loop without a client) ------------------------

@dataclass
class _Shard:
    """One unit of work: a file path, or a dask DataFrame partition (a Delayed, a Future or a frame)."""

    index: int
    name: str
    data: Any
    kind: str  # "npz", "parquet" or "frame"


def _read(data: Any, name: str, kind: str, options: _ShardOptions, num_threads: Optional[int]) -> Interactions:
    """One shard through the reader of its format (``FORMATS``), or a DataFrame partition through ``read_frame``."""
    if kind == "frame":
        return read_frame(data, user=options.user_col, item=options.item_col, rating=options.rating_col,
                          min_rating=options.min_rating, num_threads=num_threads, name=name,
                          params=("user_col", "item_col", "rating_col", "timestamp_col"))
    return load_interactions(data, **options.reader_options(kind, num_threads))


def _load(data: Any, name: str, kind: str, options: _ShardOptions,
          num_threads: Optional[int] = None) -> Optional[Interactions]:
    """:func:`_read`, or None for a shard that adds nothing: all its rows below ``min_rating``, or an empty
    DataFrame partition (filtered frames have such). An empty file is an error (a failed write, most likely)."""
    try:
        return _read(data, name, kind, options, num_threads)
    except NoRowsLeftError:
        return None
    except NoRowsError:
        if kind == "frame":
            return None
        raise


def _shard_items(data: Any, name: str, kind: str, options: _ShardOptions, num_threads: Optional[int],
                 shares: Dict[str, int]) -> Optional[np.ndarray]:
    """The item ids of a shard: an npz file's item space (its header only), else the ids its kept rows use."""
    if kind == "npz":
        return read_npz_item_ids(data)
    inter = _load(data, name, kind, options, _task_threads(num_threads, shares))
    return None if inter is None else inter.item_ids


def _item_space(shards: List[_Shard], found: List[Optional[np.ndarray]]) -> np.ndarray:
    """One item space for all shards: npz shards must agree; pairs give the union of their ids."""
    if shards[0].kind == "npz":
        ref = found[0]
        for shard, ids in zip(shards[1:], found[1:]):
            if ids.shape != ref.shape:
                raise DataFormatError(
                    f"{shard.name}: has {ids.size} items but {shards[0].name} has {ref.size}; npz shards must "
                    "share one item space (write them from one matrix, e.g. with lae_fast.distributed.save_shards)")
            if ids.dtype.kind != ref.dtype.kind or not np.array_equal(ids, ref):
                raise DataFormatError(
                    f"{shard.name}: its item ids differ from those of {shards[0].name} (same count, {ref.size}); "
                    "npz shards must share one item space, column for column")
        return ref
    present = [(shard.name, ids) for shard, ids in zip(shards, found) if ids is not None]
    if not present:
        raise DataFormatError("every shard is empty; there are no interactions to use")
    try:
        return union_ids([ids for _, ids in present], names=[name for name, _ in present])
    except ValueError as exc:
        raise DataFormatError(str(exc)) from None


def _to_item_space(inter: Interactions, item_ids: np.ndarray, name: str, *, strict: bool) -> Tuple[sp.csr_matrix, int]:
    """The shard's matrix with columns in ``item_ids`` order, and the count of dropped interactions."""
    own = inter.item_ids
    if own.dtype.kind == item_ids.dtype.kind and np.array_equal(own, item_ids):
        return inter.matrix, 0
    X, unknown = align_items(inter, item_ids)
    if unknown and strict:
        outside = own[~np.isin(own.astype(str), item_ids.astype(str))]
        raise DataFormatError(f"{name}: {unknown} interactions name items that are not in item_ids "
                              f"(e.g. {outside[0].item()!r}); pass item_ids=None to use every item of the shards")
    return X, unknown


def _task_threads(num_threads: Optional[int], shares: Dict[str, int]) -> int:
    """Kernel threads for one task: the CPUs of its machine split among the tasks that may run there."""
    if num_threads is not None or os.environ.get(ENV_VAR, "").strip():
        return resolve_num_threads(num_threads)
    try:
        worker = _distributed().get_worker()
    except (ValueError, ImportError):
        return resolve_num_threads(None)
    return max(1, available_cpus() // max(1, shares.get(worker.address, worker.state.nthreads)))


def _workers(client: Any) -> Dict[str, Dict[str, Any]]:
    """Worker address -> its scheduler info (host, nthreads, ...), every worker."""
    try:
        return client.scheduler_info(n_workers=-1)["workers"]  # newer clients list 5 by default
    except TypeError:
        return client.scheduler_info()["workers"]


def _host_shares(client: Any) -> Dict[str, int]:
    """Worker address -> threads of all workers on its host (tasks that can run at once there)."""
    workers = _workers(client)
    per_host: Dict[str, int] = {}
    for info in workers.values():
        host = info.get("host", "")
        per_host[host] = per_host.get(host, 0) + int(info.get("nthreads", 1))
    return {addr: per_host[info.get("host", "")] for addr, info in workers.items()}


@dataclass
class _Partial:
    """A partial Gram (upper triangle) of some shards, with their sorted user ids for the overlap check.

    Tasks exchange it as a plain tuple (:meth:`wire` / :meth:`of`): dask serialises a
    tuple member by member, the n×n array without pickling, while a dataclass goes
    through pickle: measured 2-3 s against 12-17 s for a 20,720² float32 G between
    two local processes.
    """

    G: np.ndarray
    users: Optional[np.ndarray]
    n_users: int
    nnz: int
    shards: List[str]

    def wire(self) -> tuple:
        return (self.G, self.users, self.n_users, self.nnz, self.shards)

    @classmethod
    def of(cls, wired: Optional[tuple]) -> Optional["_Partial"]:
        return None if wired is None else cls(*wired)


def _partial_gram(datas: List[Any], names: List[str], kind: str, item_ids: np.ndarray, dtype: np.dtype,
                  num_threads: Optional[int], shares: Dict[str, int], options: _ShardOptions,
                  check_users: bool) -> Optional[tuple]:
    """One task: the Gram of a few shards, accumulated by the kernel into one n×n buffer (wired _Partial).

    ``gram_into(..., mirror=False)`` adds the upper triangle of XᵀX into its output,
    so k shards cost one n×n allocation here instead of k allocations and k adds in the tree.
    """
    n = item_ids.size
    nt = _task_threads(num_threads, shares)
    G, acc = None, None
    for data, name in zip(datas, names):
        inter = _load(data, name, kind, options, nt)
        if inter is None:
            continue
        X, _ = _to_item_space(inter, item_ids, name, strict=True)
        if G is None:
            check_fits_in_memory(n * n * dtype.itemsize, what=f"{name}: a partial {n}x{n} {dtype.name} Gram")
            G = np.zeros((n, n), dtype=dtype)
        gram_into(X, G, weighted=False, num_threads=nt, mirror=False)
        part = _Partial(G, np.sort(inter.user_ids) if check_users else None, X.shape[0], int(X.nnz), [name])
        acc = part if acc is None else _Partial(G, _merge_users(acc, part), acc.n_users + part.n_users,
                                                acc.nnz + part.nnz, acc.shards + part.shards)
    return None if acc is None else acc.wire()


def _describe(names: List[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1} more)"


def _merge_users(a: _Partial, b: _Partial) -> Optional[np.ndarray]:
    if a.users is None or b.users is None:
        return None
    if a.users.dtype.kind != b.users.dtype.kind:
        raise DataFormatError(f"user ids are integers in {_describe(a.shards)} and strings in "
                              f"{_describe(b.shards)} (or the reverse); use one type")
    common = np.intersect1d(a.users, b.users, assume_unique=True)
    if common.size:
        raise DataFormatError(
            f"{common.size} users (e.g. {common[0].item()!r}) have interactions in two shards, "
            f"{_describe(a.shards)} and {_describe(b.shards)}; {_SHARD_FIX}, or pass check_users=False "
            "if the ids merely repeat across shards for different users")
    return sorted_unique(np.concatenate([a.users, b.users]))


def _combine(wired_a: Optional[tuple], wired_b: Optional[tuple]) -> Optional[tuple]:
    """a + b, out of place: a task must not modify its inputs (dask may hold or reuse them)."""
    a, b = _Partial.of(wired_a), _Partial.of(wired_b)
    if a is None or b is None:
        return wired_b if a is None else wired_a
    users = _merge_users(a, b)
    return _Partial(a.G + b.G, users, a.n_users + b.n_users, a.nnz + b.nnz, a.shards + b.shards).wire()


def _drop_users(wired: Optional[tuple]) -> Optional[tuple]:
    """The root without its user ids: they are not needed on the driver."""
    return None if wired is None else (wired[0], None) + tuple(wired[2:])


# -- driver ---------------------------------------------------------------------------------------

def _resolve_shards(source: Any) -> List[_Shard]:
    if _is_dask_frame(source):
        parts = source.to_delayed()
        if not parts:
            raise DataFormatError("the dask DataFrame has no partitions")
        return [_Shard(i, f"partition {i}", p, "frame") for i, p in enumerate(parts)]
    paths = list_shards(source)
    kind = _shard_format(paths[0])
    # workers open the files themselves, from their own working directory: send absolute paths
    return [_Shard(i, p, os.path.abspath(p), kind) for i, p in enumerate(paths)]


def _materialize(shards: List[_Shard], client: Any) -> List[_Shard]:
    """DataFrame partitions computed once: futures on the cluster, or frames in this process."""
    if not shards or shards[0].kind != "frame":
        return shards
    if client is None:
        import dask

        datas = dask.compute(*[s.data for s in shards], scheduler="sync")
    else:
        datas = client.compute([s.data for s in shards])
    return [_Shard(s.index, s.name, d, s.kind) for s, d in zip(shards, datas)]


def _map(client: Any, func: Any, shards: List[_Shard], *args: Any) -> List[Any]:
    """func(shard.data, shard.name, shard.kind, *args) for every shard: results, in shard order."""
    if client is None:
        return [func(s.data, s.name, s.kind, *args) for s in shards]
    futures = [client.submit(func, s.data, s.name, s.kind, *args, pure=False) for s in shards]
    return client.gather(futures)


def _direct(client: Any) -> bool:
    """Move n×n arrays between this process and the workers directly, not through the scheduler.

    A client's default sends gathers and scatters via the scheduler: for a 20,720² float32
    array 2-6 s against 0.5 s direct (measured, local processes). A client created with
    ``direct_to_workers=False`` (workers unreachable from here) keeps its choice.
    """
    chosen = getattr(client, "direct_to_workers", None)
    return True if chosen is None else bool(chosen)


def _tree_sum(client: Any, futures: List[Any]) -> Any:
    """Sum futures pairwise as they complete: one dask task per add, adds first in line."""
    dd = _distributed()
    pending = dd.as_completed(futures)
    futures.clear()  # the only references left are in as_completed: finished inputs are released
    waiting = None
    for fut in pending:
        if fut.status == "error":
            client.cancel(list(pending.futures) + ([waiting] if waiting is not None else []))
            fut.result()  # raises the worker's exception
        if waiting is None:
            waiting = fut
            continue
        pending.add(client.submit(_combine, waiting, fut, pure=False, priority=10))
        waiting = None
    return waiting


def _open(source: Any, client: Any, item_ids: Any, options: _ShardOptions,
          num_threads: Optional[int]) -> Tuple[List[_Shard], np.ndarray, Dict[str, int]]:
    """The shards (DataFrame partitions computed), the item space and the thread shares of the hosts."""
    shards = _resolve_shards(source)
    options.check(shards[0].name, shards[0].kind)
    shards = _materialize(shards, client)
    shares = _host_shares(client) if client is not None else {}
    if item_ids is None:
        vocab = _item_space(shards, _map(client, _shard_items, shards, options, num_threads, shares))
    else:
        given = np.asarray(item_ids)
        if given.ndim != 1 or given.size == 0:
            raise ValueError(f"item_ids must be a non-empty 1-D array of ids, got shape {given.shape}")
        vocab = as_ids(given, given.size, name="item_ids")
    return shards, vocab, shares


@dataclass
class GramResult:
    """A Gram summed over shards.

    Attributes
    ----------
    G : ndarray (n_items, n_items)
        Full symmetric, or only its upper triangle with ``mirror=False``.
    item_ids : ndarray (n_items,)
        Original id of each row/column.
    n_users, nnz, n_shards : int
    seconds : float
        Wall time, reading included.
    """

    G: np.ndarray
    item_ids: np.ndarray
    n_users: int
    nnz: int
    n_shards: int
    seconds: float = field(default=0.0)


def distributed_gram(source: Any, *, client: Any = None, dtype: Any = np.float32, item_ids: Any = None,
                     user_col: str = "user", item_col: str = "item", rating_col: Optional[str] = None,
                     min_rating: Optional[float] = None, num_threads: Optional[int] = None,
                     check_users: bool = True, mirror: bool = True,
                     shards_per_task: Optional[int] = None) -> GramResult:
    """:math:`G = X^T X` over user-partitioned shards: compiled Gram kernels on the workers, summed in a tree.

    Parameters
    ----------
    source : str, path-like, list of them, or dask DataFrame
        See the module docstring and :func:`list_shards`.
    client : distributed.Client, optional
        None: a plain loop in this process (no dask needed).
    dtype : {np.float32, np.float64}, default np.float32
        float32 is exact while every item has at most 2^24 users (warned otherwise).
    item_ids : array-like, optional
        The item space (column order). Default: npz shards' shared item ids, or the
        sorted union of the items of parquet / DataFrame shards (one extra pass over
        the shards). An interaction with an item outside it is an error.
    user_col, item_col : str
        Columns of parquet / DataFrame shards.
    rating_col, min_rating : optional
        Parquet / DataFrame shards: keep only rows whose rating (``rating_col``, or
        the column found by its usual names) is at least ``min_rating``, as
        :func:`lae_fast.data.load_interactions` does; a shard left without rows adds
        nothing. Refused for npz shards (no ratings).
    num_threads : int, optional
        Kernel (and Arrow reader) threads per task. Default: ``LAE_FAST_NUM_THREADS`` on the worker,
        else the worker machine's CPUs divided by the dask threads of all workers
        on that machine (no oversubscription).
    check_users : bool, default True
        Refuse a user id present in two shards (its cross terms would be lost).
    mirror : bool, default True
        Fill the lower triangle too; False leaves the upper triangle, all that
        :meth:`~lae_fast.LinearAutoencoder.fit_gram` reads.
    shards_per_task : int, optional
        Shards one task adds into its n×n buffer before the tree sum. Default:
        the shards spread evenly over the cluster's dask threads (one buffer per
        thread); 1 gives one task, one buffer and one add per shard.

    Returns
    -------
    GramResult

    Raises
    ------
    DataFormatError
        Unreadable or empty shards, missing columns, shards with different item
        spaces, a user in two shards, items outside ``item_ids``.
    TypeError
        ``rating_col`` / ``min_rating`` for npz shards.
    ImportError
        dask.distributed or pyarrow missing where needed.

    Examples
    --------
    >>> from lae_fast.distributed import connect, distributed_gram  # doctest: +SKIP
    >>> with connect("local:2") as client:                           # doctest: +SKIP
    ...     res = distributed_gram("shards/", client=client)
    """
    t0 = time.perf_counter()
    dt = check_dtype(dtype)
    if shards_per_task is not None:
        shards_per_task = check_int(shards_per_task, name="shards_per_task", low=1)
    options = _ShardOptions(user_col, item_col, rating_col, _min_rating(min_rating))
    shards, vocab, shares = _open(source, client, item_ids, options, num_threads)
    args = (shards[0].kind, vocab, dt, num_threads, shares, options, check_users)
    if client is None:  # a plain loop: every shard added into one buffer
        total = _Partial.of(_partial_gram([s.data for s in shards], [s.name for s in shards], *args))
    else:
        if shards_per_task is None:  # one task per dask thread: fewest n×n buffers, every thread busy
            slots = sum(int(info.get("nthreads", 1)) for info in _workers(client).values())
            shards_per_task = -(-len(shards) // max(1, slots))
        vocab_f = client.scatter(vocab, broadcast=True, hash=False, direct=_direct(client))
        args = (args[0], vocab_f) + args[2:]
        groups = [shards[i:i + shards_per_task] for i in range(0, len(shards), shards_per_task)]
        leaves = [client.submit(_partial_gram, [s.data for s in g], [s.name for s in g], *args, pure=False)
                  for g in groups]
        root = _tree_sum(client, leaves)
        total = _Partial.of(client.gather(client.submit(_drop_users, root, pure=False), direct=_direct(client)))
        del root, vocab_f
    if total is None:
        raise DataFormatError("every shard is empty; there are no interactions to use")
    G = total.G
    if mirror:
        mirror_upper(G, num_threads=resolve_num_threads(None))
    top = float(G.diagonal().max())
    if dt == np.float32 and top > FLOAT32_EXACT_COUNT:
        warnings.warn(f"an item has {top:.0f} users, more than 2^24 = {FLOAT32_EXACT_COUNT}: float32 counts are "
                      "rounded and the sum depends on the order of the shards; use dtype=np.float64",
                      RuntimeWarning, stacklevel=2)
    return GramResult(G, vocab, total.n_users, total.nnz, len(shards), time.perf_counter() - t0)


def fit_distributed(model: Any, source: Any, *, client: Any = None, item_embeddings: Any = None,
                    **gram_kwargs: Any) -> Any:
    """Fit a model whose closed form starts from G: the Gram on the cluster, the solve on the driver.

    A model on the neighbourhood route (``neighbors=m``, or the automatic switch) whose dense
    n×n does not fit this machine never forms it: candidate lists are summed over the shards
    and the columns are solved on the workers
    (:func:`lae_fast.distributed_neighbors.fit_on_lists`), bit for bit the in-process fit on
    the same lists.

    Parameters
    ----------
    model : ItemItemModel
        A model that solves from a Gram matrix (``type(model).solves_from_gram()``):
        the EASE family and L3AE.
    source, client, **gram_kwargs
        As in :func:`distributed_gram` (``dtype`` comes from the model).
    item_embeddings : array-like of shape (n_items, d), optional
        Text models only: one row per item of ``item_ids`` (which must then be
        given, so that the rows and the Gram's columns are the same items).

    Returns
    -------
    model
        Fitted; ``fit_seconds_["gram"]`` is the distributed Gram's wall time and
        ``n_users_``/``nnz_`` describe the data.
    """
    if not type(model).solves_from_gram():
        raise TypeError(f"{type(model).__name__} cannot be fitted from a Gram; the distributed fit covers "
                        f"{', '.join(model_names(from_gram=True))}")
    if "dtype" in gram_kwargs or "mirror" in gram_kwargs:
        raise TypeError("dtype and mirror are set by fit_distributed (dtype is the model's)")
    if model.takes_embeddings and gram_kwargs.get("item_ids") is None:
        raise TypeError(f"{type(model).__name__} needs item_embeddings aligned to the items: pass item_ids= "
                        "(the item space) and item_embeddings= (one row per id, same order)")
    if NEIGHBORS_OPTION in model.options:
        from .distributed_neighbors import fit_on_lists  # it builds on this module

        return fit_on_lists(model, source, client=client, item_embeddings=item_embeddings, **gram_kwargs)
    return fit_from_gram(model, source, client=client, item_embeddings=item_embeddings, **gram_kwargs)


def fit_from_gram(model: Any, source: Any, *, client: Any = None, item_embeddings: Any = None,
                  **gram_kwargs: Any) -> Any:
    """:func:`fit_distributed` through the n×n Gram: summed on the cluster, solved here by ``fit_gram``."""
    dtype = model.validated_params()["dtype"]
    res = distributed_gram(source, client=client, dtype=dtype, mirror=False, **gram_kwargs)
    return model.fit_gram(res.G, item_ids=res.item_ids, item_embeddings=item_embeddings, n_users=res.n_users,
                          nnz=res.nnz, gram_seconds=res.seconds, copy=False)


# -- ranking --------------------------------------------------------------------------------------

_B_CACHE: Dict[Tuple[str, int, int], np.ndarray] = {}


@dataclass(frozen=True)
class _ModelFile:
    """B by reference: each worker memory-maps this model file once (shared storage)."""

    path: str


def _resolve_B(ref: Any) -> np.ndarray:
    if not isinstance(ref, _ModelFile):
        return ref
    st = os.stat(ref.path)
    key = (os.path.realpath(ref.path), st.st_mtime_ns, st.st_size)
    if key not in _B_CACHE:
        _B_CACHE.clear()  # one model per worker at a time
        _B_CACHE[key] = load_model(ref.path, mmap=True, verify=False).B_
    return _B_CACHE[key]


def _rank_shard(data: Any, name: str, kind: str, index: int, B_ref: Any, item_ids: np.ndarray, N: int,
                filter_seen: bool, output_dir: str, batch_users: int, num_threads: Optional[int],
                shares: Dict[str, int], options: _ShardOptions, fmt: str,
                popularity: Optional[np.ndarray]) -> Dict[str, Any]:
    nt = _task_threads(num_threads, shares)
    inter = _load(data, name, kind, options, nt)
    if inter is None:
        return {"shard": name, "file": None, "users": 0, "rows": 0, "unknown": 0}
    X, unknown = _to_item_space(inter, item_ids, name, strict=False)
    B = _resolve_B(B_ref)
    path = os.path.join(output_dir, f"part-{index:05d}.{fmt}")
    with RecWriter(path, fmt) as writer:
        for lo in range(0, X.shape[0], batch_users):
            hi = min(lo + batch_users, X.shape[0])
            ids, scores = topk(X[lo:hi], B, N, filter_already_liked_items=filter_seen, num_threads=nt)
            fill_cold_rows(X[lo:hi], ids, scores, popularity)
            writer.write(*top_rows(inter.user_ids[lo:hi], ids, scores, item_ids))
    return {"shard": name, "file": path, "users": int(X.shape[0]), "rows": writer.rows, "unknown": int(unknown)}


@dataclass
class RankingResult:
    """What :func:`recommend_all` wrote.

    Attributes
    ----------
    output_dir : str
    files : list of str
        One ``part-NNNNN.parquet`` per non-empty shard, columns ``user, rank, item, score``.
    n_users, n_rows : int
    n_unknown : int
        History interactions with items the model does not know (ignored).
    seconds : float
    """

    output_dir: str
    files: List[str]
    n_users: int
    n_rows: int
    n_unknown: int
    seconds: float


def recommend_all(model: Any, source: Any, output_dir: Union[str, os.PathLike], *, N: int = 100,
                  client: Any = None, filter_already_liked_items: bool = True, user_col: str = "user",
                  item_col: str = "item", rating_col: Optional[str] = None, min_rating: Optional[float] = None,
                  broadcast: Optional[bool] = None, batch_users: int = 65536,
                  num_threads: Optional[int] = None, overwrite: bool = False, verify: bool = True,
                  format: str = "parquet") -> RankingResult:
    """Top-``N`` items for every user of every shard, written as parquet (or CSV).

    Parameters
    ----------
    model : ItemItemModel or str or path-like
        A fitted model, or a model file (:meth:`~lae_fast.ItemItemModel.save`).
    source : str, path-like, list of them, or dask DataFrame
        User histories, as for :func:`distributed_gram`; items the model does not
        know are ignored (counted in ``n_unknown``).
    output_dir : str or path-like
        Receives ``part-NNNNN.parquet`` (one per shard, same number) with columns
        ``user`` (the shard's original ids), ``rank`` (1 = best, int32), ``item``
        (the model's item ids) and ``score`` (float32, ``x_u · B``). With a
        cluster it must be storage that every worker can write.
    N : int, default 100
    client : distributed.Client, optional
        None: a plain loop in this process.
    filter_already_liked_items : bool, default True
    user_col, item_col, rating_col, min_rating : optional
        How parquet / DataFrame shards are read, as in :func:`distributed_gram`:
        with ``min_rating`` a history holds the rows rated at least that (a user
        without any gets no list).
    broadcast : bool, optional
        True: send B from the driver to every worker once (``scatter(broadcast=True)``).
        False: each worker memory-maps the model file (``model`` must be a path
        on storage shared by the workers). Default: False for a path, else True.
    batch_users : int, default 65536
        Users ranked per kernel call (one parquet row group each): bounds the
        memory of a task to about ``batch_users × N × 8`` bytes beside B.
    num_threads : int, optional
        As in :func:`distributed_gram`.
    overwrite : bool, default False
        Replace ``part-*.parquet`` files already in ``output_dir`` (else an error:
        stale parts of another run would mix with the new ones).
    verify : bool, default True
        Check the model file's SHA-256 once, on the driver (reads all of B; the
        workers never re-check).
    format : {"parquet", "csv"}, default "parquet"
        ``part-NNNNN.csv`` files instead: the same columns, written with Python's
        csv module (ids that hold commas, quotes or line breaks are quoted; scores
        to 6 significant digits).

    Returns
    -------
    RankingResult

    Notes
    -----
    Each list is exactly :meth:`~lae_fast.ItemItemModel.recommend` for that user
    (same kernel, same tie rule: lower item index first); padding (fewer than N
    candidates) is left out, never written as -1.
    """
    t0 = time.perf_counter()
    N = check_int(N, name="N", low=1)
    batch_users = check_int(batch_users, name="batch_users", low=1)
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        loaded = load_model(path, mmap=True, verify=verify)
        broadcast = False if broadcast is None else broadcast
        B_ref: Any = (_ModelFile(os.path.abspath(path)) if not broadcast or client is None
                      else loaded.B_ if sp.issparse(loaded.B_) else np.asarray(loaded.B_))
    elif isinstance(model, ItemItemModel):
        loaded = model
        if broadcast is False:
            raise ValueError("broadcast=False memory-maps a model file on the workers: pass the model's path")
        B_ref = loaded.B
    else:
        raise TypeError(f"model must be a fitted ItemItemModel or a model file path, got {type(model).__name__}")
    if client is None and isinstance(B_ref, _ModelFile):
        B_ref = loaded.B_
    item_ids = loaded.item_ids_
    if format not in ("parquet", "csv"):
        raise ValueError(f"format must be 'parquet' or 'csv', got {format!r}")
    options = _ShardOptions(user_col, item_col, rating_col, _min_rating(min_rating))
    shards = _resolve_shards(source)
    options.check(shards[0].name, shards[0].kind)
    output_dir = os.path.abspath(os.fspath(output_dir))  # workers write from their own working directory
    os.makedirs(output_dir, exist_ok=True)
    stale = sorted(glob.glob(os.path.join(output_dir, "part-*.parquet")) + glob.glob(os.path.join(output_dir, "part-*.csv")))
    if stale:
        if not overwrite:
            raise FileExistsError(f"{output_dir}: already holds {len(stale)} part-* files of an earlier run; remove "
                                  "them, choose another directory, or pass overwrite=True")
        for p in stale:
            os.remove(p)
    shards = _materialize(shards, client)
    shares = _host_shares(client) if client is not None else {}
    popularity = getattr(loaded, "item_counts_", None)  # the cold-user fallback, as model.recommend gives it
    tail = (item_ids, int(N), bool(filter_already_liked_items), os.path.abspath(output_dir), int(batch_users),
            num_threads, shares, options, format, popularity)
    if client is None:
        stats = [_rank_shard(s.data, s.name, s.kind, s.index, B_ref, *tail) for s in shards]
    else:
        if not isinstance(B_ref, _ModelFile):
            B_ref = client.scatter(B_ref, broadcast=True, hash=False, direct=_direct(client))
        item_f = client.scatter(item_ids, broadcast=True, hash=False, direct=_direct(client))
        futures = [client.submit(_rank_shard, s.data, s.name, s.kind, s.index, B_ref, item_f, *tail[1:],
                                 pure=False) for s in shards]
        stats = client.gather(futures)
    return RankingResult(output_dir, [s["file"] for s in stats if s["file"]], sum(s["users"] for s in stats),
                         sum(s["rows"] for s in stats), sum(s["unknown"] for s in stats),
                         time.perf_counter() - t0)
