"""Recommender.reload: a model file replaced atomically is swapped in between calls, under load.

Files are replaced with ``model.save`` / ``Recommender.save``, which write a temporary file in
the same folder and rename it over the path: the contract reload relies on."""
import gc
import os
import sys
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast.io as model_io
from lae_fast import EASE, RDLAE, ModelFileError, Recommender, _serve

from test_serving import assert_same


@pytest.fixture(scope="module")
def two_models():
    rng = np.random.default_rng(3)
    X = sp.csr_matrix((rng.random((400, 150)) < 0.06).astype(np.float32))
    return EASE(l2=10.0).fit(X), RDLAE(l2=30.0, dropout=0.3, xi=0.2).fit(X), X


def test_reload_swaps_only_a_replaced_file(tmp_path, two_models):
    a, b, X = two_models
    path = tmp_path / "live.laef"
    a.save(path)
    rec = Recommender.load(path)
    assert rec.path == str(path) and rec.reload() is False
    h = X[0].indices
    ids, scores = a.recommend(X[0], 10)
    assert_same(rec.recommend_one(h, 10), (ids[0], scores[0]))
    b.save(path)
    assert rec.reload() is True and rec.reload() is False
    ids, scores = b.recommend(X[0], 10)
    assert_same(rec.recommend_one(h, 10), (ids[0], scores[0]))
    assert rec.reload(force=True) is True
    # another form of B and another catalogue: everything comes from the new file
    Recommender(a).compress("int8").save(path)
    assert rec.reload() and rec.kind == "compressed" and rec.dtype == "int8"
    small = EASE(l2=3.0).fit(X[:, :40])
    small.save(path)
    assert rec.reload() and rec.n_items == 40 and rec.kind == "dense"
    assert rec.recommend_one([39], 5)[0].shape == (5,)
    with pytest.raises(ValueError, match="outside"):
        rec.recommend_one([100], 5)


def test_a_bad_or_missing_file_keeps_the_old_model(tmp_path, two_models):
    a, b, X = two_models
    path = tmp_path / "live.laef"
    a.save(path)
    rec = Recommender.load(path)
    before = rec.recommend_one(X[1].indices, 10)
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0xFF
    with model_io.atomic_write(path) as fh:
        fh.write(bytes(raw))
    with pytest.raises(ModelFileError, match="checksum"):
        rec.reload()
    assert_same(rec.recommend_one(X[1].indices, 10), before)
    os.unlink(path)
    with pytest.raises(FileNotFoundError):
        rec.reload()
    assert_same(rec.recommend_one(X[1].indices, 10), before)  # the unlinked file stays mapped
    b.save(path)
    assert rec.reload()
    ids, scores = b.recommend(X[1], 10)
    assert_same(rec.recommend_one(X[1].indices, 10), (ids[0], scores[0]))


def test_only_a_loaded_recommender_reloads(two_models, tmp_path):
    a, _, _ = two_models
    with pytest.raises(ValueError, match="not loaded from a file path"):
        Recommender(a).reload()
    a.save(tmp_path / "m.laef")
    with open(tmp_path / "m.laef", "rb") as fh:
        with pytest.raises(ValueError, match="not loaded from a file path"):
            Recommender.load(fh).reload()
    with pytest.raises(ValueError, match="not loaded from a file path"):
        Recommender.load(tmp_path / "m.laef").prune(5).reload()


def test_an_in_flight_call_finishes_on_the_old_B(tmp_path, two_models, monkeypatch):
    """The reload happens inside the kernel call (deterministically): that call answers from the
    B it started with, the next one from the new file."""
    a, b, X = two_models
    path = tmp_path / "live.laef"
    a.save(path)
    rec = Recommender.load(path)
    real = _serve.one_dense
    fired = []

    def kernel_with_a_reload_inside(*args):
        if not fired:
            fired.append(1)
            b.save(path)
            assert rec.reload()
        return real(*args)

    monkeypatch.setattr(_serve, "one_dense", kernel_with_a_reload_inside)
    h = X[2].indices
    ids, scores = rec.recommend_one(h, 10)
    assert fired
    ref_a, ref_b = a.recommend(X[2], 10), b.recommend(X[2], 10)
    assert_same((ids, scores), (ref_a[0][0], ref_a[1][0]))
    assert_same(rec.recommend_one(h, 10), (ref_b[0][0], ref_b[1][0]))


def test_serving_threads_see_one_model_or_the_other_never_a_mix(tmp_path, two_models):
    """4 threads serve without pause while the file is replaced and reloaded 20 times: every
    answer is exactly model A's or model B's (dense or compressed files), and nothing fails."""
    a, b, X = two_models
    files = [Recommender(a), Recommender(b).compress("float16")]
    queries = [(X[u].indices, 5 + u % 20) for u in range(120)]
    answers = [[(r.recommend_one(h, N)) for h, N in queries] for r in files]
    path = tmp_path / "live.laef"
    files[0].save(path)
    rec = Recommender.load(path)
    stop = threading.Event()
    errors, seen, counts = [], [set() for _ in range(4)], [0] * 4

    def serve(t):
        i = t
        while not stop.is_set():
            q = i % len(queries)
            try:
                got = rec.recommend_one(*queries[q])
            except Exception as exc:  # noqa: BLE001 - any failure is the finding
                errors.append(repr(exc))
                return
            which = [k for k in (0, 1) if np.array_equal(got[0], answers[k][q][0])
                     and np.array_equal(got[1], answers[k][q][1])]
            if not which:
                errors.append(f"query {q}: an answer from neither model")
                return
            seen[t].update(which)
            counts[t] += 1
            i += 4

    threads = [threading.Thread(target=serve, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    try:
        for k in range(20):
            files[(k + 1) % 2].save(path)
            assert rec.reload(verify=k % 2 == 0)
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=60)
    assert not errors, errors[:3]
    assert all(c > 0 for c in counts) and set().union(*seen) == {0, 1}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_replaced_files_are_unmapped_after_reload(tmp_path, two_models):
    a, b, _ = two_models
    path = tmp_path / "live.laef"
    a.save(path)
    rec = Recommender.load(path)
    for k in range(6):
        (b if k % 2 == 0 else a).save(path)
        rec.reload()
    gc.collect()
    with open("/proc/self/maps") as fh:
        stale = [line for line in fh if str(path) in line and "(deleted)" in line]
    assert stale == []
    with open("/proc/self/maps") as fh:
        assert any(str(path) in line for line in fh)  # the live file is mapped


def test_load_reads_header_and_arrays_from_the_same_file(tmp_path, two_models, monkeypatch):
    """A file renamed over the path between the header read and the mapping must not pair one
    file's header with the other's bytes."""
    a, b, _ = two_models
    path, other = tmp_path / "live.laef", tmp_path / "other.laef"
    a.save(path)
    Recommender(b).compress("int8").save(other)
    real = model_io._read_header

    def header_then_swap(fh, name):
        out = real(fh, name)
        os.replace(other, path)
        return out

    monkeypatch.setattr(model_io, "_read_header", header_then_swap)
    arrays, meta = model_io.load_arrays(path)
    assert meta["model"] == a.name
    np.testing.assert_array_equal(arrays["B"], a.B_)
