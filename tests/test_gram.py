"""lae_fast.gram (G = XᵀX straight from CSR) against scipy, exactly."""
import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
from lae_fast.gram import _item_major_view, gram_into


def scipy_gram(X, binary=True):
    """Reference: canonical CSR (duplicates summed), optionally binarised, then (XᵀX).toarray()."""
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.sum_duplicates()
    X.eliminate_zeros()
    if binary:
        X.data[:] = 1.0
    return (X.T @ X).toarray()


def shuffled_rows(X, seed=0, duplicate=0.0):
    """Hand-built CSR holding X's entries with each row's column order permuted and, optionally,
    a fraction of the entries stored twice (scipy keeps such a matrix as given)."""
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(X)
    indptr, indices, data = [0], [], []
    for u in range(X.shape[0]):
        cols = X.indices[X.indptr[u]:X.indptr[u + 1]]
        vals = X.data[X.indptr[u]:X.indptr[u + 1]]
        if duplicate and cols.size:
            extra = rng.random(cols.size) < duplicate
            cols = np.concatenate([cols, cols[extra]])
            vals = np.concatenate([vals, vals[extra]])
        order = rng.permutation(cols.size)
        indices.append(cols[order])
        data.append(vals[order])
        indptr.append(indptr[-1] + cols.size)
    out = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)), shape=X.shape)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_random_binary_exact(make_binary, dtype, num_threads):
    X = make_binary(300, 70, 0.15, seed=3)
    G = lae_fast.gram(X, dtype=dtype, num_threads=num_threads)
    assert G.dtype == dtype and G.shape == (70, 70) and G.flags.c_contiguous
    np.testing.assert_array_equal(G, scipy_gram(X))
    np.testing.assert_array_equal(np.diag(G), np.diff(X.tocsc().indptr))  # exact item counts
    np.testing.assert_array_equal(G, G.T)


def test_power_law_popularity(make_power_law):
    X = make_power_law(500, 120, mean_len=12, alpha=1.2, seed=4)
    ref = scipy_gram(X)
    G1 = lae_fast.gram(X, num_threads=1)
    G2 = lae_fast.gram(X, num_threads=2)
    np.testing.assert_array_equal(G1, ref)
    np.testing.assert_array_equal(G1, G2)
    assert ref[0, 0] > 10 * ref[-1, -1]  # the data really is skewed


def test_unsorted_column_indices(make_binary):
    X = make_binary(80, 25, 0.3, seed=5)
    Xu = shuffled_rows(X, seed=1)
    assert not Xu.has_sorted_indices  # the kernel needs sorted rows: validation must sort them
    Xu_before = Xu.indices.copy()
    np.testing.assert_array_equal(lae_fast.gram(Xu, num_threads=2), scipy_gram(X))
    np.testing.assert_array_equal(Xu.indices, Xu_before)  # the caller's matrix is left alone


@pytest.mark.parametrize("weighted", [False, True])
def test_duplicate_entries(make_binary, weighted):
    X = make_binary(80, 25, 0.3, seed=6).astype(np.float64)
    X.data = np.random.default_rng(0).uniform(0.5, 3.0, X.nnz)
    Xd = shuffled_rows(X, seed=2, duplicate=0.4)
    assert Xd.nnz > X.nnz and not Xd.has_canonical_format
    G = lae_fast.gram(Xd, dtype=np.float64, weighted=weighted)
    if weighted:
        # duplicates are summed first, as scipy does
        np.testing.assert_allclose(G, scipy_gram(Xd, binary=False), rtol=1e-12)
        assert not np.allclose(G, scipy_gram(X, binary=False))
    else:
        # binary: an item counts once per user however often it is stored
        np.testing.assert_array_equal(G, scipy_gram(X))
        np.testing.assert_array_equal(np.diag(G), np.diff(X.tocsc().indptr))


def test_empty_rows_and_columns(make_binary):
    X = make_binary(50, 20, 0.3, seed=7, empty_items=(0, 7, 19), empty_users=(0, 10, 11, 49))
    G = lae_fast.gram(X, num_threads=2)
    np.testing.assert_array_equal(G, scipy_gram(X))
    assert not G[[0, 7, 19]].any() and not G[:, [0, 7, 19]].any()


@pytest.mark.parametrize("fmt", ["csc", "coo", "lil", "dense", "bool", "int"])
def test_other_input_formats(make_binary, fmt):
    X = make_binary(60, 15, 0.3, seed=8)
    Y = {"csc": X.tocsc(), "coo": X.tocoo(), "lil": X.tolil(), "dense": X.toarray(),
         "bool": X.astype(bool), "int": X.astype(np.int64).toarray()}[fmt]
    np.testing.assert_array_equal(lae_fast.gram(Y), scipy_gram(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weighted(make_binary, dtype):
    X = make_binary(100, 30, 0.25, seed=9).astype(np.float64)
    X.data = np.random.default_rng(1).uniform(0.1, 5.0, X.nnz)
    G = lae_fast.gram(X, dtype=dtype, weighted=True, num_threads=2)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(G, scipy_gram(X, binary=False), rtol=rtol)
    # and the binary default ignores the weights
    np.testing.assert_array_equal(lae_fast.gram(X, dtype=dtype), scipy_gram(X))


def test_single_user_and_tiny_shapes():
    X = sp.csr_matrix(np.array([[0, 1, 1, 0, 1]], dtype=np.float32))
    np.testing.assert_array_equal(lae_fast.gram(X, num_threads=2), scipy_gram(X))
    X1 = sp.csr_matrix(np.array([[1.0]]))
    np.testing.assert_array_equal(lae_fast.gram(X1), [[1.0]])
    empty_users = sp.csr_matrix((0, 4), dtype=np.float32)
    np.testing.assert_array_equal(lae_fast.gram(empty_users), np.zeros((4, 4)))
    no_entries = sp.csr_matrix((5, 3), dtype=np.float32)
    np.testing.assert_array_equal(lae_fast.gram(no_entries, num_threads=2), np.zeros((3, 3)))


def test_one_thread_equals_two_threads_many_tasks(make_binary):
    X = make_binary(700, 150, 0.1, seed=10)
    np.testing.assert_array_equal(lae_fast.gram(X, num_threads=1), lae_fast.gram(X, num_threads=2))
    np.testing.assert_array_equal(lae_fast.gram(X, num_threads=2), scipy_gram(X))


def _canonical_with_index_dtype(X, idx_dtype):
    """scipy's constructors downcast small int64 index arrays; set them after construction."""
    X = sp.csr_matrix(X, copy=True)
    X.sort_indices()
    X.indices = X.indices.astype(idx_dtype)
    X.indptr = X.indptr.astype(idx_dtype)
    return X


@pytest.mark.parametrize("idx_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_int32_and_int64_indices(make_binary, idx_dtype, weighted):
    X = make_binary(120, 40, 0.2, seed=11).astype(np.float64)
    X.data = np.random.default_rng(2).uniform(0.5, 2.0, X.nnz)
    Xi = _canonical_with_index_dtype(X, idx_dtype)
    assert Xi.indices.dtype == idx_dtype and Xi.indptr.dtype == idx_dtype
    out = np.zeros((40, 40))
    gram_into(Xi, out, weighted=weighted, num_threads=2)
    np.testing.assert_allclose(out, scipy_gram(X, binary=not weighted), rtol=1e-12)
    # through the public function as well
    np.testing.assert_allclose(lae_fast.gram(Xi, dtype=np.float64, weighted=weighted),
                               scipy_gram(X, binary=not weighted), rtol=1e-12)


def test_upper_only_mode_leaves_lower_triangle(make_binary):
    X = make_binary(50, 20, 0.3, seed=12)
    out = np.zeros((20, 20))
    gram_into(X, out, weighted=False, num_threads=2, mirror=False)
    ref = scipy_gram(X)
    np.testing.assert_array_equal(np.triu(out), np.triu(ref))
    np.testing.assert_array_equal(np.tril(out, -1), 0)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_item_major_view_points_back_into_the_csr_rows(make_power_law, index_dtype):
    X = make_power_law(200, 60, seed=13)
    X.sort_indices()
    item_ptr, item_user, item_pos, order = _item_major_view(X, np.dtype(index_dtype))
    assert item_user.dtype == index_dtype and item_pos.dtype == index_dtype
    counts = np.diff(X.tocsc().indptr)
    np.testing.assert_array_equal(np.diff(item_ptr), counts)
    for i in range(60):
        ks = np.arange(item_ptr[i], item_ptr[i + 1])
        users, pos = item_user[ks], item_pos[ks]
        np.testing.assert_array_equal(X.indices[pos], i)  # the position holds item i ...
        assert np.all((X.indptr[users] <= pos) & (pos < X.indptr[users + 1]))  # ... in that user's row
    # every used item is processed exactly once, unused ones are skipped
    np.testing.assert_array_equal(np.sort(order), np.flatnonzero(counts))
    # heaviest rows of G first: item i at CSR position k of user u costs indptr[u+1] - k updates
    cost = np.zeros(60)
    for u in range(X.shape[0]):
        for k in range(X.indptr[u], X.indptr[u + 1]):
            cost[X.indices[k]] += X.indptr[u + 1] - k
    assert np.all(np.diff(cost[order]) <= 0)


def test_bad_arguments(make_binary):
    X = make_binary(10, 5, 0.5, seed=14)
    with pytest.raises(ValueError, match="dtype"):
        lae_fast.gram(X, dtype=np.int32)
    with pytest.raises(ValueError, match="num_threads"):
        lae_fast.gram(X, num_threads=0)
    Xn = X.copy()
    Xn.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lae_fast.gram(Xn)


def test_weights_beyond_float32_are_refused_not_made_inf():
    X = sp.csr_matrix(np.array([[1e39, 1.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="do not fit in float32.*dtype=np.float64"):
        lae_fast.gram(X, weighted=True)
    G = lae_fast.gram(X, weighted=True, dtype=np.float64)
    np.testing.assert_array_equal(G, (X.T @ X).toarray())
    np.testing.assert_array_equal(lae_fast.gram(X), [[1, 1], [1, 2]])  # unweighted counts are unaffected
