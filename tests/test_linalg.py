"""SPD inverse in place (potrf + potri), the triangle mirror and the memory preflight."""
import numpy as np
import pytest

import lae_fast
import lae_fast.linalg as linalg
from lae_fast import spd_inverse_inplace
from lae_fast.linalg import mirror_upper


def random_spd(n, cond=None, seed=0):
    """Random SPD matrix; with ``cond`` its eigenvalues are log-spaced over that condition number."""
    rng = np.random.default_rng(seed)
    if cond is None:
        A = rng.standard_normal((n + 5, n))
        return A.T @ A + 0.5 * np.eye(n)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.logspace(0, -np.log10(cond), n)) @ Q.T


def relerr(a, ref):
    return np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max()


@pytest.mark.parametrize("n", [1, 2, 17, 64, 65, 130])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_matches_numpy_float64(n, num_threads):
    A = random_spd(n, seed=n)
    ref = np.linalg.inv(A)
    out = A.copy()
    res = spd_inverse_inplace(out, num_threads=num_threads)
    assert res is out  # in place
    assert relerr(out, ref) < 1e-10
    np.testing.assert_array_equal(out, out.T)  # full symmetric result


@pytest.mark.parametrize("n", [1, 17, 65, 130])
def test_matches_numpy_float32(n):
    A = random_spd(n, seed=n + 1).astype(np.float32)
    ref = np.linalg.inv(A.astype(np.float64))  # exact inverse of the float32 input
    out = A.copy()
    spd_inverse_inplace(out, num_threads=2)
    assert out.dtype == np.float32
    assert relerr(out, ref) < 1e-4
    np.testing.assert_array_equal(out, out.T)


@pytest.mark.parametrize("dtype, cond, tol", [(np.float64, 1e6, 1e-8), (np.float64, 1e4, 1e-10),
                                              (np.float32, 1e3, 1e-3), (np.float32, 1e2, 1e-4)])
def test_ill_conditioned(dtype, cond, tol):
    A = random_spd(80, cond=cond, seed=3).astype(dtype)
    ref = np.linalg.inv(A.astype(np.float64))
    assert np.linalg.cond(A.astype(np.float64)) > cond / 10
    out = A.copy()
    spd_inverse_inplace(out)
    assert relerr(out, ref) < tol


def test_gram_plus_ridge_like_the_models(make_binary):
    X = make_binary(200, 50, 0.2, seed=4)
    G = lae_fast.gram(X, dtype=np.float64) + 3.0 * np.eye(50)
    out = G.copy()
    spd_inverse_inplace(out)
    assert relerr(out, np.linalg.inv(G)) < 1e-12


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_binary_gram_counts_exactly_for_every_history_length(dtype, index_dtype):
    """The binary Gram adds a user's items eight at a time where it can: histories of every length
    (0 to 40, so every remainder of eight) give XᵀX exactly, in both index widths and precisions."""
    import scipy.sparse as sp

    rng = np.random.default_rng(11)
    n = 300
    rows = [rng.choice(n, size=L, replace=False) for L in list(range(41)) * 4]
    X = sp.csr_matrix((np.ones(sum(r.size for r in rows)), np.concatenate(rows),
                       np.concatenate([[0], np.cumsum([r.size for r in rows])])), shape=(len(rows), n))
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    Xd = X.toarray()
    np.testing.assert_array_equal(lae_fast.gram(X, dtype=dtype), (Xd.T @ Xd).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_only_the_upper_triangle_is_read(dtype):
    A = random_spd(70, seed=5).astype(dtype)
    ref = np.linalg.inv(A.astype(np.float64))
    out = A.copy()
    out[np.tril_indices(70, -1)] = np.nan  # garbage below the diagonal
    spd_inverse_inplace(out)
    assert np.isfinite(out).all()
    assert relerr(out, ref) < (1e-4 if dtype == np.float32 else 1e-10)
    # without the mirror only the upper triangle is written; the garbage stays below
    out = A.copy()
    out[np.tril_indices(70, -1)] = -123.0
    spd_inverse_inplace(out, mirror=False)
    assert relerr(np.triu(out), np.triu(ref)) < (1e-4 if dtype == np.float32 else 1e-10)
    assert np.all(out[np.tril_indices(70, -1)] == -123.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_not_positive_definite(dtype):
    A = np.diag([2.0, 1.0, -1.0, 4.0]).astype(dtype)
    with pytest.raises(np.linalg.LinAlgError, match="order 3"):
        spd_inverse_inplace(A.copy())
    S = np.ones((5, 5), dtype=dtype) * 4.0  # rank one (PSD, singular); 4 = 2², so exact zero pivot
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        spd_inverse_inplace(S)
    N = -random_spd(6, seed=6).astype(dtype)
    with pytest.raises(np.linalg.LinAlgError, match="order 1"):
        spd_inverse_inplace(N)


@pytest.mark.parametrize("method", ["lapack", "blocked"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_upper_triangle_is_named_and_nothing_written(method, bad):
    A = random_spd(300, seed=3)
    A[7, 260] = bad
    before = A.copy()
    with pytest.raises(np.linalg.LinAlgError, match=r"holds .* at \(7, 260\).*check the input data"):
        spd_inverse_inplace(A, method=method)
    np.testing.assert_array_equal(A, before)
    # the lower triangle is never read: a NaN there does not matter
    A = random_spd(300, seed=3)
    expected = np.linalg.inv(A)
    A[260, 7] = np.nan
    np.testing.assert_allclose(spd_inverse_inplace(A, method=method), expected, rtol=1e-8, atol=1e-12)


def test_empty_matrix():
    a = np.zeros((0, 0))
    assert spd_inverse_inplace(a).shape == (0, 0)


@pytest.mark.parametrize("bad, match", [
    (np.eye(3)[:, :2].copy(), "square"),
    (np.ones(3), "square"),
    (np.eye(3, dtype=np.int64), "float32 or float64"),
    (np.asfortranarray(random_spd(4))[:, :], None),
    (np.eye(6)[::2, ::2], "C-contiguous"),
])
def test_bad_arrays(bad, match):
    if match is None:  # Fortran-ordered but symmetric: refused rather than silently copied
        assert not bad.flags.c_contiguous
        match = "C-contiguous"
    with pytest.raises(ValueError, match=match):
        spd_inverse_inplace(bad)


def test_read_only_array_is_refused():
    a = np.eye(3)
    a.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        spd_inverse_inplace(a)


@pytest.mark.parametrize("n", [0, 1, 2, 63, 64, 65, 129, 200])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_mirror_upper(n, dtype, num_threads):
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n, n)).astype(dtype)
    expected = np.triu(a) + np.triu(a, 1).T
    res = mirror_upper(a, num_threads=num_threads)
    assert res is a
    np.testing.assert_array_equal(a, expected)
