"""Compressed dense B (lae_fast.compression) and its serving kernel, every SIMD level the CPU has."""
import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

import lae_fast
from lae_fast import EASE, LAE, ModelFileError, Recommender, _serve, serving
from lae_fast.cli import main
from lae_fast.compression import CODECS, CompressedB, compress, decompress
from lae_fast.serving import SERVING_MODEL

from test_serving import assert_crafted_file_refused, assert_same, random_histories, ref_one


#: the decode loops this CPU runs: portable C always, then AVX2 + F16C, then AVX-512F
CPU_LEVELS = range(_serve.SIMD_LEVELS.index(_serve.force_simd_level(-1)) + 1)


@pytest.fixture(params=CPU_LEVELS, ids=lambda level: _serve.SIMD_LEVELS[level])
def simd(request):
    """Run a test with each decode level this CPU runs (the default is the widest)."""
    used = _serve.force_simd_level(request.param)
    assert used == _serve.SIMD_LEVELS[request.param]
    yield used
    _serve.force_simd_level(-1)


def code_exact_B(n, seed=0):
    """Rows of integers in [-127, 127] times a power of two, each row reaching ±127 off the diagonal:
    int8 and float16 store them exactly, and sums of a few hundred rows are exact in float32, so the
    kernel's scores compare exactly with a numpy reference."""
    rng = np.random.default_rng(seed)
    Q = rng.integers(-127, 128, size=(n, n)).astype(np.float64)
    cols = (np.arange(n) + 1 + rng.integers(0, max(n - 1, 1), size=n)) % n
    cols = np.where(cols == np.arange(n), (cols + 1) % n, cols) if n > 1 else cols
    Q[np.arange(n), cols] = 127 * rng.choice([-1, 1], size=n)
    Q[np.arange(n), np.arange(n)] = rng.integers(-300, 300, size=n)  # the diagonal is kept apart
    return (Q * np.exp2(-rng.integers(2, 6, size=n))[:, None]).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the codes
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", CODECS)
def test_compress_matches_numpy(codec):
    rng = np.random.default_rng(1)
    B = (rng.standard_normal((70, 70)) * np.exp(rng.uniform(-12, 3, size=(70, 1)))).astype(np.float32)
    B[5] = 0  # an all-zero row
    B[9, 9] = 1e4  # a diagonal far above its row: kept apart, so it does not set the scale
    c = compress(B, codec, block_rows=16)
    assert c.codes.dtype == CODECS[codec] and c.codes.flags.c_contiguous and c.codec == codec
    assert np.all(np.diag(c.codes) == 0)
    np.testing.assert_array_equal(c.diagonal, np.diag(B))
    off = B.astype(np.float64).copy()
    np.fill_diagonal(off, 0)
    top = np.abs(off).max(axis=1)
    if codec == "float16":
        # power-of-two scales put each row's top in [2^14, 2^15]; codes are numpy's float16 rounding
        exp = np.log2(c.row_scale.astype(np.float64))
        assert np.all(exp == np.round(exp))
        ok = top > 0
        assert np.all((top[ok] / c.row_scale[ok] >= 2 ** 14) & (top[ok] / c.row_scale[ok] <= 2 ** 15))
        np.testing.assert_array_equal(c.codes, (off / c.row_scale[:, None]).astype(np.float16))
        err_bound = np.abs(off) * 2.0 ** -11 + c.row_scale[:, None] * 2.0 ** -24
    else:
        np.testing.assert_allclose(c.row_scale[top > 0], top[top > 0] / 127, rtol=1e-7)
        ref = np.clip(np.rint(off / c.row_scale[:, None].astype(np.float64)), -127, 127)
        np.testing.assert_array_equal(c.codes, ref.astype(np.int8))
        assert np.abs(c.codes).max(axis=1)[top > 0].min() == 127
        err_bound = c.row_scale[:, None] / 2 * (1 + 1e-6)
    assert c.row_scale[5] > 0 and np.all(c.codes[5] == 0)
    assert np.all(np.abs(decompress(c) - B) <= err_bound + 1e-30)
    assert c.nbytes == c.codes.nbytes + 2 * 70 * 4


def test_compress_is_exact_on_code_exact_B():
    B = code_exact_B(50)
    for codec in CODECS:
        np.testing.assert_array_equal(decompress(compress(B, codec)), B)


@pytest.mark.parametrize("B, kw, exc, match", [
    (np.array([[0.0, np.nan], [1.0, 0.0]]), {}, ValueError, "row 0"),
    (np.array([[0.0, 1.0], [np.inf, 0.0]]), {"dtype": "int8"}, ValueError, "row 1"),
    (np.zeros((2, 3)), {}, ValueError, "square"),
    (np.zeros((0, 0)), {}, ValueError, "non-empty"),
    (np.zeros((2, 2), dtype=complex), {}, TypeError, "real numbers"),
    (np.zeros((2, 2)), {"dtype": "float8"}, ValueError, "'float16', 'int8'"),
    (np.zeros((2, 2)), {"dtype": "bfloat16"}, ValueError, "one of"),
    (np.array([[0.0, 1e300], [1.0, 0.0]]), {}, ValueError, "float32 range"),
    (np.zeros((2, 2)), {"block_rows": 0}, ValueError, "block_rows"),
])
def test_compress_refuses_bad_input(B, kw, exc, match):
    with pytest.raises(exc, match=match):
        compress(B, **kw)


# ---------------------------------------------------------------------------------------------
# the kernel: exact against numpy, at every SIMD level
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("n, block", [(1, None), (37, None), (300, None), (300, 7), (300, 64), (301, 100)])
def test_kernel_matches_reference(simd, codec, n, block, monkeypatch):
    """n not a multiple of the vector width, blocks narrower than n, N around n / 32."""
    B = code_exact_B(n, seed=n)
    if block is not None:
        monkeypatch.setattr(serving, "COMPRESSED_BLOCK", block)
    rec = Recommender.from_matrix(B).compress(codec)
    assert rec.kind == "compressed" and rec.dtype == codec
    rng = np.random.default_rng(n)
    for N in (1, 5, 20, n + 3):
        for h in random_histories(n, 12, min(n, 60), seed=N):
            if len(h) == 0:
                continue
            assert_same(rec.recommend_one(h, N), ref_one(B, h, N))
            f, w = rng.integers(0, n, size=3), rng.choice(n, size=max(1, n // 2), replace=False)
            assert_same(rec.recommend_one(h, N, filter_items=f, items=w), ref_one(B, h, N, filter_items=f, items=w))
            assert_same(rec.recommend_one(h, N, filter_already_liked_items=False),
                        ref_one(B, h, N, filter_liked=False))


@pytest.mark.parametrize("codec", CODECS)
def test_batch_matches_reference_on_every_level(simd, codec):
    B = code_exact_B(200, seed=4)
    rec = Recommender.from_matrix(B).compress(codec)
    hs = [h for h in random_histories(200, 60, 80, seed=3) if len(h)]
    for nt in (1, 2):
        ids, scores = rec.recommend_batch(hs, 9, num_threads=nt)
        for u, h in enumerate(hs):
            assert_same((ids[u], scores[u]), ref_one(B, h, 9))


def test_every_float16_bit_pattern_decodes_exactly(simd):
    """One row of B per 256 half patterns; a no-mask query on that row returns its decoded values."""
    codes = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16).reshape(256, 256)
    want = codes.astype(np.float32)
    c = CompressedB(codes.copy(), np.ones(256, np.float32), np.zeros(256, np.float32))
    c.codes[np.arange(256), np.arange(256)] = 0  # the diagonal is kept apart (zero here)
    want[np.arange(256), np.arange(256)] = 0
    rec = Recommender.from_matrix(c)
    for r in range(256):
        ids, scores = rec.recommend_one([r], 256, filter_already_liked_items=False)
        got = np.full(256, np.nan, np.float32)
        got[ids[ids >= 0]] = scores[ids >= 0]
        row = np.where(want[r] == 0, np.float32(0), want[r])  # the sum starts at +0: -0 comes back as +0
        kept = ~np.isnan(row) & (row != -np.inf)  # NaN and -inf are never returned (as for a float32 B)
        np.testing.assert_array_equal(got[kept], row[kept])
        assert np.isnan(got[~kept]).all()


def test_real_model_scores_are_the_decoded_B_and_rank_like_float32():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random((600, 250)) < 0.06).astype(np.float32))
    for model in (EASE(l2=30.0).fit(X), LAE(l2=30.0).fit(X)):  # LAE: a free, large diagonal
        dense = Recommender(model)
        ref_ids, _ = model.recommend(X[:200], 20)
        for codec, min_overlap in (("float16", 0.995), ("int8", 0.95)):
            rec = dense.compress(codec)
            D = decompress(rec._snap.packed).astype(np.float64)
            overlap = []
            for u in range(200):
                h = X[u].indices
                ids, scores = rec.recommend_one(h, 20)
                np.testing.assert_allclose(scores, D[h].sum(axis=0)[ids], rtol=1e-5, atol=1e-6)
                overlap.append(len(set(ids.tolist()) & set(ref_ids[u].tolist())) / 20)
            assert np.mean(overlap) >= min_overlap, (model, codec, np.mean(overlap))


# ---------------------------------------------------------------------------------------------
# from a fitted model, through files and the CLI
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fitted_model():
    rng = np.random.default_rng(2)
    X = sp.csr_matrix((rng.random((300, 120)) < 0.08).astype(np.float32))
    return EASE(l2=10.0).fit(X), X


@pytest.mark.parametrize("codec", CODECS)
def test_file_round_trip_is_memory_mapped(tmp_path, fitted_model, codec):
    model, X = fitted_model
    rec = Recommender(model).compress(codec)
    path = tmp_path / f"{codec}.laef"
    rec.save(path)
    again = Recommender.load(path)
    assert again.kind == "compressed" and again.dtype == codec and again.path == str(path)
    assert not again._snap.packed.codes.flags.writeable  # a read-only map of the file
    np.testing.assert_array_equal(again.popularity, model.item_counts_)
    np.testing.assert_array_equal(again.item_ids, model.item_ids_)
    for u in range(40):
        assert_same(again.recommend_one(X[u].indices, 10), rec.recommend_one(X[u].indices, 10))
    assert "compressed" in repr(again) and codec in repr(again)
    assert again.nbytes == 120 * 120 * CODECS[codec].itemsize + 2 * 120 * 4
    with pytest.raises(ValueError, match="already serves a compressed B"):
        again.compress("int8")
    with pytest.raises(ValueError, match="already serves a compressed B"):
        again.prune(5)
    decoded = lae_fast.load_model(path)  # as a model: the codes decoded to float32
    np.testing.assert_array_equal(decoded.B_, decompress(again._snap.packed))


@pytest.mark.parametrize("mutate, match", [
    (lambda a, m: a.update(B=a["B"].astype(np.float32)), "wrong dtypes or shapes"),
    (lambda a, m: a.update(row_scale=a["row_scale"][:-1].copy()), "wrong dtypes or shapes"),
    (lambda a, m: a.update(row_scale=a["row_scale"].astype(np.float64)), "wrong dtypes or shapes"),
    (lambda a, m: a.pop("diagonal"), "missing"),
    (lambda a, m: a.update(row_scale=np.full(120, np.nan, np.float32)), "NaN"),
    (lambda a, m: a.update(diagonal=np.full(120, np.inf, np.float32)), "NaN"),
    (lambda a, m: a.update(item_counts_=-np.ones(120)), "popularity"),
    (lambda a, m: a.update(item_counts_=np.ones(7)), "popularity"),
])
def test_crafted_compressed_files_are_refused(tmp_path, fitted_model, mutate, match):
    rec = Recommender(fitted_model[0]).compress("int8")
    c = rec._snap.packed
    arrays = {"B": c.codes.copy(), "row_scale": c.row_scale.copy(), "diagonal": c.diagonal.copy(),
              "item_ids": rec.item_ids, "item_counts_": rec.popularity}
    meta = {"model": SERVING_MODEL, "n_items": 120, "kind": "compressed", "dtype": "int8", "m": None, "by": None}
    assert_crafted_file_refused(tmp_path, arrays, meta, mutate, match)


@pytest.mark.parametrize("codec", CODECS)
def test_cli_compress(tmp_path, fitted_model, codec):
    model, X = fitted_model
    src = tmp_path / "ease.laef"
    model.save(src)
    out = tmp_path / "ease-c.laef"
    result = CliRunner().invoke(main, ["-q", "compress", str(src), "-o", str(out), "--dtype", codec, "--json"])
    assert result.exit_code == 0, result.output
    assert f'"dtype": "{codec}"' in result.output
    rec = Recommender.load(out)
    want = Recommender(model).compress(codec)
    for u in range(20):
        assert_same(rec.recommend_one(X[u].indices, 10), want.recommend_one(X[u].indices, 10))
    info = CliRunner().invoke(main, ["info", str(out), "--json"])
    assert info.exit_code == 0 and '"kind": "compressed"' in info.output
    # the source must be a dense model; errors are one line, no traceback
    again = CliRunner().invoke(main, ["-q", "compress", str(out), "-o", str(tmp_path / "x.laef")])
    assert again.exit_code != 0 and "already serves a compressed B" in again.output
    assert "Traceback" not in again.output and not (tmp_path / "x.laef").exists()
    bad = CliRunner().invoke(main, ["compress", str(src), "-o", str(tmp_path / "y.laef"), "--dtype", "int4"])
    assert bad.exit_code != 0 and "int4" in bad.output and not (tmp_path / "y.laef").exists()
