"""lae_fast.Recommender (single-user serving) and lae_fast.serving.prune."""
import io
import json
import os
import pickle
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
import lae_fast.io as model_io
from lae_fast import _memory
from lae_fast import EASE, RDLAE, ModelFileError, Recommender
from lae_fast.serving import SERVING_MODEL, prune, prune_rows


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------
def ref_one(B, hist, N, *, filter_items=None, items=None, filter_liked=True, popularity=None):
    """Scores summed in float64 from a dense (or densified) B; score desc then id asc; padded.

    An empty history is a cold user: ranked by ``popularity`` (the training counts), or
    given nothing when the popularity is unknown. min(N, n_items) entries: the documented cap."""
    B = B.toarray() if sp.issparse(B) else np.asarray(B)
    n = B.shape[0]
    N = min(N, n)
    hist = np.unique(np.asarray(hist, dtype=np.int64))
    s = B[hist].astype(np.float64).sum(axis=0).astype(np.float32) if hist.size else np.zeros(n, np.float32)
    if hist.size == 0 and popularity is not None:
        s = np.asarray(popularity, dtype=np.float32)
    ok = np.zeros(n, bool)
    if hist.size == 0 and popularity is None:
        items = []
    ok[np.arange(n) if items is None else np.asarray(items, dtype=np.int64)] = True
    if filter_items is not None:
        ok[np.asarray(filter_items, dtype=np.int64)] = False
    if filter_liked:
        ok[hist] = False
    cand = np.flatnonzero(ok)
    order = cand[np.lexsort((cand, -s[cand]))][:N]
    ids = np.full(N, -1, np.int32)
    scores = np.full(N, -np.inf, np.float32)
    ids[:order.size] = order
    scores[:order.size] = s[order]
    return ids, scores


def ref_prune(B, m, by="abs"):
    """Column by column: the m entries with the largest key, ties to the lower row."""
    B = np.asarray(B)
    out = np.zeros_like(B)
    kept = np.zeros(B.shape, bool)
    for j in range(B.shape[1]):
        key = np.abs(B[:, j]) if by == "abs" else B[:, j]
        rows = np.lexsort((np.arange(B.shape[0]), -key))[:m]
        out[rows, j] = B[rows, j]
        kept[rows, j] = True
    return out, kept


def assert_same(got, ref):
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32


def random_histories(n_items, count, max_len, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        L = int(rng.integers(0, max_len + 1))
        out.append(rng.integers(0, n_items, size=L))  # duplicates and any order on purpose
    return out


@pytest.fixture(scope="module")
def dyadic_B():
    """500 items: large enough for the chunked selection (n / 32 > N) to be exercised."""
    rng = np.random.default_rng(3)
    return (rng.integers(-64, 65, size=(500, 500)) / 16.0).astype(np.float32)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((400, 300)) < 0.05).astype(np.float32))
    return EASE(l2=20.0).fit(X), X


# ---------------------------------------------------------------------------------------------
# answers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("N", [1, 5, 20, 100, 600])
def test_dense_matches_reference(dyadic_B, N):
    rec = Recommender.from_matrix(dyadic_B)
    for h in random_histories(500, 30, 40, seed=N):
        assert_same(rec.recommend_one(h, N), ref_one(dyadic_B, h, N))


def test_ties_really_happen(dyadic_B):
    rec = Recommender.from_matrix(dyadic_B)
    ids, scores = rec.recommend_one([3, 4], 100)
    assert (np.diff(scores) == 0).any()
    # a history whose rows cancel: every item ties at 0, lowest indices win
    B = np.array([[1.0, -1.0, 2.0], [-1.0, 1.0, -2.0], [0.5, 0.5, 0.5]], dtype=np.float32)
    ids, scores = Recommender.from_matrix(B).recommend_one([0, 1], 3, filter_already_liked_items=False)
    assert ids.tolist() == [0, 1, 2] and np.all(scores == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_model_recommend(fitted, dtype):
    """Bit-identical to model.recommend (same accumulator, same selection)."""
    model, X = fitted
    model = EASE(l2=20.0, dtype=dtype).fit(X)
    rec = Recommender(model)
    ids, scores = model.recommend(X[:150], 20)
    for u in range(150):
        assert_same(rec.recommend_one(X[u].indices, 20), (ids[u], scores[u]))
    f, w = [1, 5, 7, 250], np.arange(0, 300, 2)
    ids, scores = model.recommend(X[:40], 7, filter_items=f, items=w)
    for u in range(40):
        assert_same(rec.recommend_one(X[u].indices[::-1].tolist(), 7, filter_items=f, items=w),
                    (ids[u], scores[u]))
    ids, scores = model.recommend(X[:40], 9, filter_already_liked_items=False)
    for u in range(40):
        assert_same(rec.recommend_one(X[u].indices, 9, filter_already_liked_items=False), (ids[u], scores[u]))


def test_filters_and_whitelist(dyadic_B):
    rec = Recommender.from_matrix(dyadic_B)
    rng = np.random.default_rng(1)
    for h in random_histories(500, 20, 30, seed=9):
        f = rng.integers(0, 500, size=40)
        w = rng.choice(500, size=60, replace=False)
        for kw in ({"filter_items": f}, {"items": w}, {"filter_items": f, "items": w}):
            assert_same(rec.recommend_one(h, 10, **kw), ref_one(dyadic_B, h, 10, **kw))
            ids, _ = rec.recommend_one(h, 10, **kw)
            assert not np.isin(ids, np.asarray(h)).any()


def test_padding_and_everything_masked(dyadic_B):
    rec = Recommender.from_matrix(dyadic_B)
    ids, scores = rec.recommend_one([1, 2], 5, items=[1, 2, 3])
    assert ids.tolist() == [3, -1, -1, -1, -1] and np.isneginf(scores[1:]).all()
    ids, scores = rec.recommend_one([1], 3, items=[1])
    assert ids.tolist() == [-1, -1, -1] and np.isneginf(scores).all()
    ids, scores = rec.recommend_one(np.arange(500), 4)
    assert ids.tolist() == [-1] * 4
    ids, scores = rec.recommend_one([1], 0)
    assert ids.shape == (0,) and scores.shape == (0,)


def test_single_item_catalogue():
    rec = Recommender.from_matrix(np.array([[2.0]], dtype=np.float32), popularity=[3])
    assert rec.recommend_one([], 2)[0].tolist() == [0]        # N is capped at the one item
    assert rec.recommend_one([0], 2)[0].tolist() == [-1]
    assert rec.recommend_one([0], 2, filter_already_liked_items=False)[1].tolist() == [2.0]


def test_pruned_matches_reference(dyadic_B):
    rec = Recommender.from_matrix(dyadic_B).prune(37)
    P = prune(dyadic_B, 37)
    assert rec.pruned and rec.m == 37
    for N in (1, 10, 550):
        for h in random_histories(500, 25, 60, seed=N):
            assert_same(rec.recommend_one(h, N), ref_one(P, h, N))
            assert_same(rec.recommend_one(h, N, filter_items=[0, 5], items=np.arange(3, 400)),
                        ref_one(P, h, N, filter_items=[0, 5], items=np.arange(3, 400)))


def test_from_sparse_matrix_equals_dense_of_it(dyadic_B):
    P = prune(dyadic_B, 50)
    a = Recommender.from_matrix(P)
    b = Recommender.from_matrix(P.toarray())
    for h in random_histories(500, 20, 30, seed=4):
        assert_same(a.recommend_one(h, 12), b.recommend_one(h, 12))


#: the forms of B a Recommender serves, and how to get each from a dense one
FORMS = {"dense": lambda rec: rec, "pruned": lambda rec: rec.prune(60),
         "float16": lambda rec: rec.compress("float16"), "int8": lambda rec: rec.compress("int8")}


@pytest.mark.parametrize("form", FORMS)
def test_batch_equals_one_by_one(dyadic_B, form):
    rec = FORMS[form](Recommender.from_matrix(dyadic_B, popularity=np.arange(500) % 7))
    hs = random_histories(500, 200, 50, seed=11)
    kw = {"filter_items": [9, 10], "items": np.arange(2, 480)}
    for num_threads in (1, 2):
        ids, scores = rec.recommend_batch(hs, 15, num_threads=num_threads, **kw)
        assert ids.shape == (200, 15)
        for u, h in enumerate(hs):
            assert_same((ids[u], scores[u]), rec.recommend_one(h, 15, **kw))
    # a sparse matrix of histories gives the same as the lists
    rows = np.repeat(np.arange(200), [len(h) for h in hs])
    X = sp.csr_matrix((np.ones(rows.size), (rows, np.concatenate(hs))), shape=(200, 500))
    assert_same(rec.recommend_batch(X, 15, **kw), rec.recommend_batch(hs, 15, **kw))
    ids, scores = rec.recommend_batch([], 4)
    assert ids.shape == (0, 4)
    # cold users (empty histories) in a batch get what recommend_one gives them, and are flagged
    hs = [[1, 2], [], [7], []]
    ids, scores, cold = rec.recommend_batch(hs, 5, return_cold=True, **kw)
    assert cold.tolist() == [False, True, False, True]
    for u, h in enumerate(hs):
        assert_same((ids[u], scores[u]), rec.recommend_one(h, 5, **kw))


# ---------------------------------------------------------------------------------------------
# concurrency
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
def test_eight_threads_give_the_serial_answers(fitted, form):
    model, _ = fitted
    rec = FORMS[form](Recommender(model))
    rng = np.random.default_rng(21)
    queries = []
    for _ in range(8 * 1000):
        L = int(rng.integers(0, 60))
        kw = {}
        if rng.random() < 0.2:
            kw["filter_items"] = rng.integers(0, 300, size=5)
        if rng.random() < 0.1:
            kw["items"] = rng.choice(300, size=100, replace=False)
        queries.append((rng.integers(0, 300, size=L), int(rng.integers(1, 40)), kw))
    serial = [rec.recommend_one(h, N, **kw) for h, N, kw in queries]
    start = threading.Barrier(8)

    def worker(t):
        start.wait()
        return [rec.recommend_one(h, N, **kw) for h, N, kw in queries[t * 1000:(t + 1) * 1000]]

    with ThreadPoolExecutor(8) as pool:
        parallel = [r for chunk in pool.map(worker, range(8)) for r in chunk]
    assert len(parallel) == len(serial)
    for got, ref in zip(parallel, serial):
        assert_same(got, ref)


@pytest.mark.parametrize("form", ["dense", "pruned", "int8"])
def test_the_gil_is_released_during_a_call(form):
    """A pure-Python thread keeps running while another thread is inside recommend_one."""
    import time

    rng = np.random.default_rng(0)
    B = rng.standard_normal((3000, 3000), dtype=np.float32)
    rec = Recommender.from_matrix(B)
    if form == "pruned":
        rec = rec.prune(2000)
    elif form != "dense":
        rec = rec.compress(form)
    hist = np.arange(3000, dtype=np.int64)  # every row: ~1-10 ms per call
    calls, ticks = [], []
    done = threading.Event()

    def worker():
        for _ in range(30):
            t0 = time.perf_counter()
            rec.recommend_one(hist, 10)
            calls.append((t0, time.perf_counter()))
        done.set()

    # no forced GIL hand-overs: the threads only swap where one lets the GIL go on its own
    # (the kernel's nogil section, or this thread's sleep(0))
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0)
        thread.join()
    finally:
        sys.setswitchinterval(old_interval)
    ticks = np.array(ticks)
    inside = sum(int(((ticks > a) & (ticks < b)).sum()) for a, b in calls)
    # with the GIL held during a call, this thread could not record a single tick inside one
    assert inside > 0


# ---------------------------------------------------------------------------------------------
# original ids
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def str_rec(dyadic_B):
    ids = np.array([f"item-{i:04d}" for i in range(500)])[::-1].copy()  # not sorted
    return Recommender.from_matrix(dyadic_B, item_ids=ids), ids


def test_ids_round_trip(str_rec, dyadic_B):
    rec, ids = str_rec
    hist = [3, 17, 250]
    got_ids, got_scores, n_unknown = rec.recommend_one_ids(ids[hist], 10)
    ref_ids, ref_scores = ref_one(dyadic_B, hist, 10)
    assert n_unknown == 0
    np.testing.assert_array_equal(got_ids, ids[ref_ids])
    np.testing.assert_array_equal(got_scores, ref_scores)


def test_unknown_ids_ignored_and_counted_or_raise(str_rec, dyadic_B):
    rec, ids = str_rec
    got_ids, _, n_unknown = rec.recommend_one_ids([ids[3], "nope", ids[17], "nope"], 5)
    assert n_unknown == 2
    np.testing.assert_array_equal(got_ids, ids[ref_one(dyadic_B, [3, 17], 5)[0]])
    with pytest.raises(ValueError, match="2 of item_ids are not in the model"):
        rec.recommend_one_ids([ids[3], "nope", "nope"], 5, unknown="raise")
    with pytest.raises(ValueError, match="unknown must be"):
        rec.recommend_one_ids([ids[3]], 5, unknown="skip")
    # unknown ids in filters / whitelists are harmless
    got_ids, _, n_unknown = rec.recommend_one_ids([ids[3]], 3, filter_items=["zzz"], items=[ids[8], "zzz"])
    assert got_ids.tolist() == [ids[8]] and n_unknown == 0  # no padding in the id form


def test_int_ids_and_mixed_types():
    B = np.arange(16, dtype=np.float32).reshape(4, 4)
    rec = Recommender.from_matrix(B, item_ids=np.array([10, 20, 30, 2 ** 62]))
    a = rec.recommend_one_ids([20], 2)
    assert a[0].tolist() == [2 ** 62, 30] and a[2] == 0
    for same in (["20"], np.array([20], dtype=np.uint64), [20.0], np.array([20], dtype=np.int8)):
        b = rec.recommend_one_ids(same, 2)
        np.testing.assert_array_equal(b[0], a[0])
    assert rec.recommend_one_ids(np.array([2 ** 64 - 1], dtype=np.uint64), 2)[2] == 1
    assert rec.recommend_one_ids([-20, 7], 2)[2] == 2
    with pytest.raises(TypeError):
        rec.recommend_one_ids([20.5], 2)
    with pytest.raises(TypeError):
        rec.recommend_one_ids([True], 2)


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hist, exc, match", [
    (np.array([0, 500], dtype=np.int64), ValueError, "outside"),   # the fast path checks in the kernel
    (np.array([-1], dtype=np.int64), ValueError, "outside"),
    ([1, 2, 10 ** 6], ValueError, "outside"),
    ([1.5], TypeError, "integer"),
    (["a"], TypeError, "integer"),
    ([[1, 2]], ValueError, "1-D"),
])
def test_bad_history(dyadic_B, hist, exc, match):
    for rec in (Recommender.from_matrix(dyadic_B), Recommender.from_matrix(dyadic_B).prune(5)):
        with pytest.raises(exc, match=match):
            rec.recommend_one(hist, 3)
        with pytest.raises(exc, match=match):
            rec.recommend_batch([[1], hist], 3)


@pytest.mark.parametrize("N", [-1, True, 2.0, "3", None])
def test_bad_N(dyadic_B, N):
    rec = Recommender.from_matrix(dyadic_B)
    with pytest.raises(ValueError, match="N"):
        rec.recommend_one([1], N)
    with pytest.raises(ValueError, match="N"):
        rec.recommend_batch([[1]], N)


def test_bad_filters(dyadic_B):
    rec = Recommender.from_matrix(dyadic_B)
    with pytest.raises(ValueError, match="filter_items"):
        rec.recommend_one([1], 3, filter_items=[500])
    with pytest.raises(ValueError, match="items"):
        rec.recommend_one([1], 3, items=[-1])


def test_bad_construction(dyadic_B):
    with pytest.raises(lae_fast.NotFittedError):
        Recommender(EASE())
    with pytest.raises(TypeError, match="fitted"):
        Recommender(object())
    with pytest.raises(ValueError, match="square"):
        Recommender.from_matrix(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="item_ids"):
        Recommender.from_matrix(dyadic_B, item_ids=np.arange(3))
    with pytest.raises(TypeError, match="real numbers"):
        Recommender.from_matrix(np.zeros((3, 3), dtype=complex))
    with pytest.raises(ValueError, match="NaN"):
        Recommender.from_matrix(sp.csr_matrix(np.array([[np.nan]])))
    with pytest.raises(ValueError, match="already"):
        Recommender.from_matrix(dyadic_B).prune(3).prune(2)


def test_memory_preflight_for_batches(dyadic_B, monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda: 50 * 1024 * 1024)
    rec = Recommender.from_matrix(dyadic_B)
    n = rec.n_items  # N is capped at n_items, so the estimate is for top-n lists
    with pytest.raises(MemoryError, match=rf"recommend_batch: the top-{n} lists of 20000 users needs \d+\.\d MiB"):
        rec.recommend_batch([[1]] * 20_000, 100_000)
    with pytest.raises(MemoryError, match="needs"):
        rec.prune(3).recommend_batch([[1]] * 20_000, 100_000)
    ids, _ = rec.recommend_batch([[1]] * 1000, 10)  # small requests pass
    assert ids.shape == (1000, 10)


@pytest.mark.parametrize("pruned", [False, True])
def test_absurd_N_is_capped_not_allocated(pruned):
    """recommend_one(N=2**31 - 1) on an 80-item model: 80 entries, no 18 GB allocation."""
    B = (np.random.default_rng(0).integers(-64, 65, size=(80, 80)) / 16.0).astype(np.float32)
    rec = Recommender.from_matrix(B)
    rec = rec.prune(10) if pruned else rec
    P = prune(B, 10) if pruned else B
    for N in (80, 81, 2 ** 31 - 1, 2 ** 63):
        ids, scores = rec.recommend_one([3, 7], N)
        assert ids.shape == scores.shape == (80,)
        assert_same((ids, scores), ref_one(P, [3, 7], 80))
        assert (ids[-2:] == -1).all() and (ids[:-2] >= 0).all()  # two own items masked: two pads
        ids, scores = rec.recommend_batch([[3, 7], [5]], N)
        assert ids.shape == (2, 80) and (ids[1, :79] >= 0).all() and ids[1, 79] == -1
        got, _, _ = rec.recommend_one_ids([3, 7], N)
        assert got.shape == (78,)


# ---------------------------------------------------------------------------------------------
# pruning
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["abs", "value"])
@pytest.mark.parametrize("m", [1, 3, 17, 40, 41, 100])
def test_prune_keeps_exactly_m_per_column_like_numpy(by, m):
    rng = np.random.default_rng(m)
    B = (rng.integers(-6, 7, size=(41, 29)) / 4.0).astype(np.float32)  # many ties, zeros and sign pairs
    P = prune(B, m, by=by, num_threads=2)
    ref, kept = ref_prune(B, m, by)
    assert isinstance(P, sp.csr_matrix) and P.dtype == np.float32 and P.shape == B.shape
    C = P.tocsc()
    assert (np.diff(C.indptr) == min(m, 41)).all()  # explicit zeros are stored when they are kept
    mask = np.zeros(B.shape, bool)
    rows = C.indices
    cols = np.repeat(np.arange(29), np.diff(C.indptr))
    mask[rows, cols] = True
    np.testing.assert_array_equal(mask, kept)
    np.testing.assert_array_equal(P.toarray(), ref)


def test_prune_float64_and_memmap(tmp_path):
    rng = np.random.default_rng(0)
    B = rng.standard_normal((300, 300))
    path = tmp_path / "b.npy"
    np.save(path, B)
    Bm = np.load(path, mmap_mode="r")
    P = prune(Bm, 12)
    assert P.dtype == np.float64
    np.testing.assert_array_equal(P.toarray(), ref_prune(B, 12)[0])


@pytest.mark.parametrize("B, m, kw, exc", [
    (np.zeros((3, 3)), 0, {}, ValueError),
    (np.zeros((3, 3)), 2.0, {}, TypeError),
    (np.zeros((3, 3)), True, {}, TypeError),
    (np.zeros((3, 3)), 1, {"by": "max"}, ValueError),
    (np.zeros(3), 1, {}, ValueError),
    (np.zeros((3, 3), dtype=int), 1, {}, TypeError),
    (np.array([[np.nan, 0], [0, 1]]), 1, {}, ValueError),
    (np.array([[1.0, 0], [0, -np.inf]]), 1, {}, ValueError),
    (np.array([[1.0, 0], [0, -np.inf]]), 5, {"by": "value"}, ValueError),
    (sp.eye(3, format="csr"), 1, {}, TypeError),
])
def test_prune_bad_arguments(B, m, kw, exc):
    with pytest.raises(exc):
        prune(B, m, **kw)


def test_pruned_accuracy_degrades_gracefully(fitted):
    """Keeping every entry is the dense answer; fewer entries move the lists gradually."""
    model, X = fitted
    dense = Recommender(model)
    full = dense.prune(300)
    for u in range(50):
        a = dense.recommend_one(X[u].indices, 10)
        b = full.recommend_one(X[u].indices, 10)
        np.testing.assert_allclose(b[1], a[1], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def model_path(tmp_path, fitted):
    path = tmp_path / "m.laef"
    fitted[0].save(path)
    return path


def test_load_model_file_is_memory_mapped(model_path, fitted):
    model, X = fitted
    rec = Recommender.load(model_path)
    assert isinstance(rec._B, np.ndarray) and not rec._B.flags.writeable
    assert isinstance(rec._B.base, (np.memmap, memoryview)) or rec._B.base is not None
    np.testing.assert_array_equal(rec.item_ids, model.item_ids_)
    ids, scores = model.recommend(X[:20], 10)
    for u in range(20):
        assert_same(rec.recommend_one(X[u].indices, 10), (ids[u], scores[u]))
    with open(model_path, "rb") as fh:
        assert_same(Recommender.load(fh).recommend_one([1, 2], 5), rec.recommend_one([1, 2], 5))


@pytest.mark.parametrize("pruned", [False, True])
def test_serving_file_round_trip(tmp_path, fitted, pruned):
    model, X = fitted
    rec = Recommender(model)
    if pruned:
        rec = rec.prune(25, by="value")
    path = tmp_path / "serve.laef"
    rec.save(path)
    again = Recommender.load(path)
    assert again.pruned == pruned and again.n_items == 300
    if pruned:
        assert again.m == 25 and again.by == "value"
    for u in range(30):
        assert_same(again.recommend_one(X[u].indices, 8), rec.recommend_one(X[u].indices, 8))
    buf = io.BytesIO()
    rec.save(buf)
    buf.seek(0)
    assert_same(Recommender.load(buf, verify=False).recommend_one([4], 3), rec.recommend_one([4], 3))
    as_model = lae_fast.load_model(path)  # a serving file: a model holding that B, no hyper-parameters
    assert_same(as_model.recommend(np.eye(rec.n_items)[4], 3), rec.recommend_one([4], 3))


def _payload_start(raw, array=None):
    """Offset of the first array's bytes (or of ``array``'s), and the end of the header."""
    hlen = model_io._PREFIX.unpack(raw[:model_io._PREFIX.size])[2]
    header = json.loads(raw[model_io._PREFIX.size:model_io._PREFIX.size + hlen].decode())
    offsets = {k: e["offset"] for k, e in header["arrays"].items()}
    return (offsets[array] if array else min(offsets.values())), model_io._PREFIX.size + hlen


@pytest.mark.parametrize("pruned", [False, True])
def test_corrupt_truncated_foreign_pickled_files(tmp_path, fitted, pruned):
    rec = Recommender(fitted[0])
    if pruned:
        rec = rec.prune(10)
    good = tmp_path / "good.laef"
    rec.save(good)
    raw = good.read_bytes()
    start, header_end = _payload_start(raw)
    bad = tmp_path / "bad.laef"
    flipped = bytearray(raw)
    flipped[_payload_start(raw, "data" if pruned else "B")[0] + 5] ^= 0x10  # a weight, not the structure
    cases = {
        "payload flip": (bytes(flipped), "checksum"),
        "header flip": (raw[:header_end - 3] + bytes([raw[header_end - 3] ^ 1]) + raw[header_end - 2:],
                        "header"),
        "truncated": (raw[:start + 7], "truncated"),
        "empty": (b"", "too short"),
        "pickle": (pickle.dumps({"B": np.eye(3)}), "pickle"),
        "pickled model": (pickle.dumps(fitted[0]), "pickle"),
        "npy": (b"\x93NUMPY" + b"\0" * 200, "not a lae-fast model"),
        "random": (np.random.default_rng(0).bytes(5000), "not a lae-fast model"),
    }
    for label, (content, match) in cases.items():
        bad.write_bytes(content)
        with pytest.raises(ModelFileError, match=match):
            Recommender.load(bad)
        with pytest.raises(ModelFileError, match=match):
            Recommender.load(io.BytesIO(content))
    bad.write_bytes(bytes(flipped))
    assert Recommender.load(bad, verify=False).n_items == 300  # verify=False skips the checksums
    with pytest.raises(FileNotFoundError):
        Recommender.load(tmp_path / "missing.laef")


@pytest.mark.parametrize("mutate, match", [
    (lambda a, m: a.update(indices=np.array([0] * 9 + [300] + list(a["indices"][10:]), np.int32)),
     "inconsistent"),
    (lambda a, m: a.update(indptr=a["indptr"][::-1].copy()), "inconsistent"),
    (lambda a, m: a.update(indptr=a["indptr"][:-1].copy()), "wrong dtypes or shapes"),
    (lambda a, m: a.update(data=a["data"].astype(np.float64)), "wrong dtypes or shapes"),
    (lambda a, m: a.update(data=np.full_like(a["data"], np.nan)), "inconsistent"),
    (lambda a, m: a.pop("item_ids"), "item_ids"),
    (lambda a, m: m.update(n_items=301), "item_ids"),
    (lambda a, m: m.update(kind="hologram"), "kind"),
])
def test_crafted_serving_files_are_refused_even_without_verify(tmp_path, fitted, mutate, match):
    """Checksums can be recomputed by anyone: the structure is checked on every load."""
    rec = Recommender(fitted[0]).prune(10)
    indptr, indices, data = rec._csr
    arrays = {"indptr": indptr.copy(), "indices": indices.copy(), "data": data.copy(), "item_ids": rec.item_ids}
    meta = {"model": SERVING_MODEL, "n_items": 300, "kind": "pruned", "m": 10, "by": "abs", "dtype": "float32"}
    assert_crafted_file_refused(tmp_path, arrays, meta, mutate, match)


def assert_crafted_file_refused(tmp_path, arrays, meta, mutate, match):
    """A serving file whose arrays / header ``mutate`` changed is refused, with and without checksums."""
    mutate(arrays, meta)
    path = tmp_path / "crafted.laef"
    model_io.save_arrays(path, arrays, meta)
    for verify in (True, False):
        with pytest.raises(ModelFileError, match=match):
            Recommender.load(path, verify=verify)


def test_interrupted_fit_leaves_no_file(tmp_path, fitted, monkeypatch):
    """fit writes nothing; save is atomic: an interrupt at any point leaves no file."""
    from lae_fast.models import _closed_form

    _, X = fitted

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_closed_form, "spd_inverse_inplace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        EASE(10.0).fit(X)
    assert list(tmp_path.iterdir()) == []
    # the CLI: interrupted during fit, nothing is written
    from click.testing import CliRunner

    from lae_fast.cli import main

    data = tmp_path / "d.npz"
    sp.save_npz(data, X)
    out = tmp_path / "m.laef"
    result = CliRunner().invoke(main, ["-q", "fit", str(data), "-o", str(out)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert sorted(os.listdir(tmp_path)) == ["d.npz"]
    monkeypatch.undo()
    # interrupted while writing: neither the target nor a temporary file remains
    model = RDLAE(5.0).fit(X)
    monkeypatch.setattr(model_io.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(out)
    with pytest.raises(KeyboardInterrupt):
        Recommender(model).prune(5).save(out)
    assert sorted(os.listdir(tmp_path)) == ["d.npz"]


def _row_sum_reference(B: sp.csr_matrix, hist: np.ndarray, filt: np.ndarray, k: int, mask_history: bool = True):
    """numpy's scores of a sparse B (filtered items, and the history unless told not to, at -inf) and its
    top-k, ties to the lower index."""
    acc = np.zeros(B.shape[1], dtype=np.float32)
    for r in np.unique(hist):  # row by row, in the kernel's order: the same float32 sums
        lo, hi = B.indptr[r], B.indptr[r + 1]
        acc[B.indices[lo:hi]] += B.data[lo:hi]
    if mask_history:
        acc[hist] = -np.inf
    acc[filt] = -np.inf
    return acc, np.lexsort((np.arange(acc.size), -acc))[:k]


@pytest.mark.parametrize("n", [70_000, 5 * 16_384 + 123])
def test_sparse_b_past_one_pass_equals_row_sums_exactly(n):
    """A sparse B of more items than one cache-sized pass holds is scored in column blocks: every score is
    the float32 sum of the history's rows in the same order as one pass, and masks and ties hold."""
    rng = np.random.default_rng(n)
    per_row = 12
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.integers(0, n, size=n * per_row)
    cols[::per_row] = n - 1 - np.arange(n) % 50  # the last block gets entries from every row
    B = sp.csr_matrix((rng.normal(size=rows.size).astype(np.float32), (rows, cols)), shape=(n, n))
    B.sum_duplicates()
    rec = Recommender.from_matrix(B)
    filt = rng.choice(n, size=300, replace=False)
    for L in (1, 17, 400):
        hist = rng.choice(n, size=L, replace=False)
        acc, order = _row_sum_reference(B, hist, filt, 25)
        order = order[np.isfinite(acc[order])]
        ids, scores = rec.recommend_one(hist, 25, filter_items=filt)
        np.testing.assert_array_equal(ids[:order.size], order)
        np.testing.assert_array_equal(scores[:order.size], acc[order])


@pytest.mark.parametrize("mask_history", [True, False])
def test_sparse_light_history_sums_only_touched_columns_exactly(mask_history):
    """A history summing few weights against n sums only the columns it touches: every score is still the
    float32 row sum (a sum of exactly 0 and a -0.0 weight included), and the untouched columns, which
    score exactly 0, fill the list by lowest index past the negative scores, the history and the masks."""
    from lae_fast import _serve

    rng = np.random.default_rng(7)
    n, per_row = 6_000, 6
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.integers(0, n, size=rows.size)
    data = rng.integers(-4, 5, size=rows.size) / 4  # quarters: exact ties and sums of exactly 0
    data[::97] = -0.0
    B = sp.csr_matrix((data.astype(np.float32), (rows, cols)), shape=(n, n))
    B.sum_duplicates()
    rec = Recommender.from_matrix(B)
    for L, k in [(1, 30), (3, 25), (6, 40), (12, 60)]:
        hist = rng.choice(n, size=L, replace=False)
        assert np.diff(B.indptr)[hist].sum() * _serve.FEW_WEIGHTS_DIVISOR <= n  # the light path runs
        filt = np.concatenate([rng.choice(n, size=40, replace=False), np.arange(3)])  # zeros past the lowest ids
        acc, order = _row_sum_reference(B, hist, filt, k, mask_history)
        ids, scores = rec.recommend_one(hist, k, filter_items=filt, filter_already_liked_items=mask_history)
        np.testing.assert_array_equal(ids, order)
        np.testing.assert_array_equal(scores.view(np.int32), acc[order].view(np.int32))
        assert (scores <= 0).any()  # the untouched zeros were needed
    # only a few items allowed, fewer than k: padded, never a masked item
    hist = np.array([5, 17])
    allowed = np.array([2, 5, 9, 4_000])
    ids, scores = rec.recommend_one(hist, 6, items=allowed)
    expected = [i for i in sorted(set(allowed) - {5}, key=lambda i: (-float(B[hist].sum(0).A1[i]), i))]
    assert ids.tolist() == expected + [-1] * (6 - len(expected))
    assert np.isneginf(scores[len(expected):]).all()


@pytest.mark.parametrize("values", ["quarters", "normal"])
@pytest.mark.parametrize("n, threads", [(3 * 8192 + 77, 3), (140_000, 2)])
def test_sparse_heavy_history_split_over_threads_is_exact(n, threads, values):
    """A history heavy enough to split its columns over threads gets the one-thread answer to the last
    bit: every score summed in row order by one thread, ties (many, with quarter weights) to the lower
    index across the threads' shares, masks kept; 140,000 items also take the blocked pass per share."""
    from lae_fast import _serve

    rng = np.random.default_rng(n + len(values))
    heavy = rng.choice(n, size=24, replace=False)
    per_row = np.where(np.isin(np.arange(n), heavy), 2_000, 3)
    rows = np.repeat(np.arange(n), per_row)
    cols = rng.integers(0, n, size=rows.size)
    data = (rng.integers(-4, 5, size=rows.size) / 4 if values == "quarters" else rng.normal(size=rows.size))
    B = sp.csr_matrix((data.astype(np.float32), (rows, cols)), shape=(n, n))
    B.sum_duplicates()
    rec = Recommender.from_matrix(B)
    hist = np.concatenate([heavy[:20], rng.choice(n, size=30, replace=False)])
    work = np.diff(B.indptr)[np.unique(hist)].sum()
    assert work >= _serve.SPLIT_MIN_WEIGHTS  # the split path runs
    assert n // _serve.SPLIT_MIN_COLUMNS >= threads
    filt = rng.choice(n, size=500, replace=False)
    acc, order = _row_sum_reference(B, hist, filt, 40)
    one = rec.recommend_one(hist, 40, filter_items=filt, num_threads=1)
    np.testing.assert_array_equal(one[0], order)
    np.testing.assert_array_equal(one[1], acc[order])
    for t in (threads, threads + 3):
        ids, scores = rec.recommend_one(hist, 40, filter_items=filt, num_threads=t)
        np.testing.assert_array_equal(ids, one[0])
        np.testing.assert_array_equal(scores.view(np.int32), one[1].view(np.int32))
        assert rec.recommend_one_ids(hist, 40, filter_items=filt, num_threads=t)[0].tolist() == order.tolist()


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_recommend_one_checks_num_threads(kind):
    B = np.array([[0, 2, 1], [1, 0, 3], [0.5, 0.25, 0]], dtype=np.float32)
    rec = Recommender.from_matrix(B if kind == "dense" else sp.csr_matrix(B), item_ids=["a", "b", "c"])
    with pytest.raises(ValueError, match="num_threads=0"):
        rec.recommend_one([0], 2, num_threads=0)
    with pytest.raises(TypeError, match="num_threads must be an integer"):
        rec.recommend_one_ids(["a"], 2, num_threads="2")
    assert rec.recommend_json(["a"], N=1, num_threads=-1) == b'{"items":["b"],"scores":[2],"n_unknown":0,"cold":false}'


def _capped_rows_reference(B: sp.csr_matrix, r: int, by: str) -> sp.csr_matrix:
    """Each row's r best (key, column) pairs by numpy: a larger key first, ties to the lower column."""
    rows, cols, vals = [], [], []
    for i in range(B.shape[0]):
        c = B.indices[B.indptr[i]:B.indptr[i + 1]]
        v = B.data[B.indptr[i]:B.indptr[i + 1]].astype(np.float32)
        key = np.abs(v) if by == "abs" else v
        keep = np.sort(np.lexsort((c, -key))[:r])
        rows.append(np.full(keep.size, i))
        cols.append(c[keep])
        vals.append(v[keep])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=B.shape)


@pytest.mark.parametrize("by", ["abs", "value"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prune_rows_keeps_the_r_largest_of_every_row(by, dtype):
    rng = np.random.default_rng(7)
    n = 400
    lengths = rng.choice([0, 1, 5, 40, 399], size=n)  # empty, short and long rows
    rows = np.repeat(np.arange(n), lengths)
    cols = np.concatenate([rng.choice(n, size=L, replace=False) for L in lengths])
    vals = rng.integers(-3, 4, size=rows.size) / 2  # many ties, zeros stored too
    B = sp.csr_matrix((vals.astype(dtype), (rows, cols)), shape=(n, n))
    for r in (1, 3, 40, 1000):
        got = prune_rows(B, r, by=by, num_threads=2)
        want = _capped_rows_reference(B, r, by)
        assert got.dtype == np.float32 and got.has_sorted_indices
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)
    assert prune_rows(B.tocsc(), 3, by=by).nnz == np.minimum(lengths, 3).sum()  # any sparse format
    assert prune_rows(B, 10**30, by=by).nnz == B.nnz  # a cap above any row keeps everything


def test_prune_rows_refuses_bad_input():
    B = sp.csr_matrix(np.array([[0.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(TypeError, match="prune\\(B, m\\) a dense B first"):
        prune_rows(B.toarray(), 1)
    with pytest.raises(ValueError, match="r \\(entries kept per row\\)"):
        prune_rows(B, 0)
    with pytest.raises(ValueError, match="by must be one of"):
        prune_rows(B, 1, by="size")
    bad = B.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        prune_rows(bad, 1)
    with pytest.raises(ValueError, match="prune_rows caps the rows of a sparse B"):
        Recommender.from_matrix(B.toarray()).prune_rows(1)


def test_recommender_prune_rows_serves_the_capped_b_and_keeps_it_in_its_file(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    B = sp.random(n, n, density=0.2, random_state=4, format="csr", dtype=np.float32)
    B.data = rng.normal(size=B.nnz).astype(np.float32)
    rec = Recommender.from_matrix(B, popularity=np.arange(n, dtype=float))
    capped = rec.prune_rows(20)
    assert capped.kind == "pruned" and capped.row_cap == 20 and rec.row_cap is None
    assert repr(capped) == f"Recommender(n_items={n}, pruned row_cap=20)"  # from_matrix: no column cap m
    assert repr(Recommender.from_matrix(B.toarray()).prune(7)) == f"Recommender(n_items={n}, pruned m=7)"
    assert capped.prune_rows(50).row_cap == 20 and capped.prune_rows(5).row_cap == 5
    assert rec.prune_rows(10**30).row_cap == n
    want_B = _capped_rows_reference(B, 20, "abs")
    ref = Recommender.from_matrix(want_B)
    assert rec.n_weights == B.nnz and capped.n_weights == want_B.nnz < B.nnz
    np.testing.assert_array_equal(capped.row_lengths, np.minimum(np.diff(B.indptr), 20))
    assert capped.row_lengths.dtype == np.int64
    dense = Recommender.from_matrix(B.toarray())
    assert dense.n_weights == n * n and dense.row_lengths is None
    path = tmp_path / "capped.lae"
    capped.save(path)
    loaded = Recommender.load(path)
    assert loaded.row_cap == 20
    for _ in range(20):
        hist = rng.choice(n, size=int(rng.integers(1, 60)), replace=False)
        want = ref.recommend_one(hist, 15)
        for got in (capped.recommend_one(hist, 15), loaded.recommend_one(hist, 15)):
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
