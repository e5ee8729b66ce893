"""lae_fast.neighbors (sparse-support EASE family / L3AE) against numpy brute-force references."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
from lae_fast import neighbors as nb
from conftest import dyadic_matrix, power_law, random_binary, rel_err

# the small lists below are narrow on purpose (test_narrow_lists_warn checks the warning itself)
pytestmark = pytest.mark.filterwarnings("ignore:G_SS is looked up in candidate lists")


# ---------------------------------------------------------------------------------------------
# references (numpy, written from the definitions)
# ---------------------------------------------------------------------------------------------
def dense_gram(X):
    Xd = (sp.csr_matrix(X).toarray() != 0).astype(np.float64)
    return Xd.T @ Xd


def ref_candidates(G, k):
    """Top-k j != i with G_ij > 0 by float32(G_ij / sqrt(G_ii G_jj)) desc, then j asc."""
    n = G.shape[0]
    c = np.diag(G).astype(np.float64)
    idx = np.full((n, k), -1, np.int32)
    cnt = np.zeros((n, k), np.float32)
    for i in range(n):
        js = np.flatnonzero((G[i] > 0) & (np.arange(n) != i))
        cos = (G[i, js] / np.sqrt(c[i] * c[js])).astype(np.float32)
        best = js[np.lexsort((js, -cos))][:k]
        idx[i, :best.size] = best
        cnt[i, :best.size] = G[i, best]
    return idx, cnt


def lists_gram(G, lists):
    """The G the candidate-list source sees: G_ab kept iff b in a's list or a in b's (and the diagonal)."""
    n = G.shape[0]
    known = np.eye(n, dtype=bool)
    for a in range(n):
        row = lists.indices[a][lists.indices[a] >= 0]
        known[a, row] = known[row, a] = True
    return np.where(known, G, 0.0)


def ref_column(G, gamma, xi, S, j, *, text=None, l2_e=0.0):
    """Column j restricted to S: the normal equations of the restricted ridge problem, solved with
    np.linalg.solve. EASE family: diag free (xi >= 1), or fixed at ξ when the free value exceeds ξ.
    L3AE (text = column j of the text matrix): b_j = 0 and the pull λ_E ||b − s||²."""
    S = np.asarray(S)
    A = G[np.ix_(S, S)] + np.diag(gamma[S])
    r = G[S, j].copy()
    jp = int(np.flatnonzero(S == j)[0])
    rest = np.arange(S.size) != jp
    b = np.zeros(S.size)
    if text is not None:
        b[rest] = np.linalg.solve(A[np.ix_(rest, rest)], r[rest] + l2_e * text[S][rest])
        return b
    b = np.linalg.solve(A, r)
    if b[jp] > xi:  # the bound binds: b_j = ξ, the others re-solved
        b[jp] = xi
        b[rest] = np.linalg.solve(A[np.ix_(rest, rest)], r[rest] - G[S[rest], j] * xi)
    return b


def reference_text_matrix(E, l2_f):
    """Phase 1 of L3AE literally: S = I − P_F diag(1/diag P_F), P_F = (EEᵀ + λ_F I)⁻¹ (n×n)."""
    P = np.linalg.inv(E @ E.T + l2_f * np.eye(E.shape[0]))
    return np.eye(E.shape[0]) - P / np.diag(P)[None, :]


def supports_of(B):
    B = sp.csc_matrix(B)
    return [B.indices[B.indptr[j]:B.indptr[j + 1]] for j in range(B.shape[1])]


FAMILY = {  # name: (l2, dropout, xi)
    "ease": (4.0, 0.0, 0.0), "lae": (4.0, 0.0, 1.0), "dlae": (3.0, 0.3, 1.0),
    "edlae": (3.0, 0.3, 0.0), "rlae": (6.0, 0.0, 0.3), "rdlae": (5.0, 0.2, 0.4),
}


@pytest.fixture(scope="module")
def X():
    """80 users x 30 items, power-law, items 28/29 never used (diag G = 0), some empty users."""
    X = power_law(80, 30, 6, seed=3).tolil()
    X[:, 28:] = 0
    return sp.csr_matrix(X)


# ---------------------------------------------------------------------------------------------
# candidates
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 4, 29, 40])
def test_candidates_match_brute_force(X, k):
    G = dense_gram(X)
    ref = ref_candidates(G, k)
    for got in (nb.cooccurrence_candidates(X, k), nb.candidates_from_dense(G, k),
                nb.candidates_from_dense(G.astype(np.float32), k)):
        np.testing.assert_array_equal(got.indices, ref[0])
        np.testing.assert_array_equal(got.counts, ref[1])
        np.testing.assert_array_equal(got.item_counts, np.diag(G))
    if k >= 29:  # more than available: the zero-co-occurrence items are never listed
        assert (nb.cooccurrence_candidates(X, k).indices[28:] == -1).all()
        assert ((ref[0] >= 0).sum(1) < G.shape[0] - 1).any()


def test_candidates_ties_go_to_lower_index():
    A = random_binary(50, 6, 0.4, seed=4)
    X = sp.hstack([A, A, A], format="csr")  # items i, i+6, i+12 identical: exact cosine ties
    G = dense_gram(X)
    got = nb.cooccurrence_candidates(X, 8)
    ref = ref_candidates(G, 8)
    np.testing.assert_array_equal(got.indices, ref[0])
    assert got.indices[0, :2].tolist() == [6, 12]  # cosine 1 with its copies, lower index first


@pytest.mark.parametrize("k", [20, 150])
def test_candidates_of_long_rows_with_ties(k):
    """Rows long enough for the sampled prefilter and the key sort (n >= 8k), with exact ties
    across the prefilter's threshold: the lists are still the brute-force ones."""
    A = random_binary(300, 500, 0.15, seed=11)
    X = sp.hstack([A, A, A], format="csr")  # items i, i+500, i+1000 identical: ties everywhere
    G = dense_gram(X)
    ref = ref_candidates(G, k)
    for got in (nb.cooccurrence_candidates(X, k), nb.candidates_from_dense(G, k),
                nb.candidates_from_dense(G.astype(np.float32), k, num_threads=2)):
        np.testing.assert_array_equal(got.indices, ref[0])
        np.testing.assert_array_equal(got.counts, ref[1])


def test_candidates_threads_and_index_types(X):
    X64 = X.copy()
    X64.indices, X64.indptr = X64.indices.astype(np.int64), X64.indptr.astype(np.int64)
    one = nb.cooccurrence_candidates(X, 7, num_threads=1)
    two = nb.cooccurrence_candidates(X64, 7, num_threads=2)
    np.testing.assert_array_equal(one.indices, two.indices)
    np.testing.assert_array_equal(one.counts, two.counts)


def test_text_candidates_are_the_largest_text_weights():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(25, 4))
    H, inv = lae_fast.models.l3ae.text_factors(E, 0.7)
    S = reference_text_matrix(E, 0.7)
    idx, val = nb.text_candidates(E, H, inv, 6, num_threads=2)
    for j in range(25):
        s = S[:, j]
        np.testing.assert_allclose(val[j], s[idx[j]], rtol=1e-5, atol=1e-6)
        assert j not in idx[j]
        others = np.setdiff1d(np.arange(25), np.append(idx[j], j))
        assert s[idx[j]].min() >= s[others].max() - 1e-6
        assert (np.diff(val[j]) <= 0).all()


# ---------------------------------------------------------------------------------------------
# S_j = all items: the dense models
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FAMILY))
def test_all_items_support_equals_dense_family(X, name):
    l2, p, xi = FAMILY[name]
    n = X.shape[1]
    ref = lae_fast.LinearAutoencoder(l2, dropout=p, xi=xi, dtype=np.float64).fit(X).B
    G = dense_gram(X)
    full = np.ones((n, n))
    got = nb.solve_columns(G, l2=l2, dropout=p, xi=xi, supports=full, dtype=np.float64)
    assert got.n_retried == 0
    assert rel_err(got.B.toarray(), ref) < 1e-8
    got32 = nb.solve_columns(G, l2=l2, dropout=p, xi=xi, supports=full, dtype=np.float32)
    assert got32.B.dtype == np.float32 and rel_err(got32.B.toarray(), ref) < 1e-4


def test_all_items_support_equals_dense_l3ae(X):
    n = X.shape[1]
    E = np.random.default_rng(1).normal(size=(n, 5))
    E[5] = 0  # an item without text
    ref = lae_fast.L3AE(2.0, 3.0, 0.5, dtype=np.float64).fit(X, E).B
    G = dense_gram(X)
    got = nb.solve_columns_l3ae(G, E, l2_x=2.0, l2_e=3.0, l2_f=0.5, supports=np.ones((n, n)),
                                dtype=np.float64)
    assert rel_err(got.B.toarray(), ref) < 1e-8
    assert got.B.diagonal().tolist() == [0.0] * n and (sp.csc_matrix(got.B).indices.size == n * (n - 1))
    got32 = nb.solve_columns_l3ae(G, E, l2_x=2.0, l2_e=3.0, l2_f=0.5, supports=np.ones((n, n)))
    assert rel_err(got32.B.toarray(), ref) < 1e-4


def test_lists_equal_dense_when_every_pair_cooccurs():
    X = sp.csr_matrix((np.random.default_rng(5).random((60, 15)) < 0.5).astype(np.float32))
    G = dense_gram(X)
    assert (G > 0).all()
    lists = nb.cooccurrence_candidates(X, 14)
    for kw in (dict(l2=3.0, dropout=0.2, xi=0.5), dict(l2=1.0)):
        a = nb.solve_columns(lists, m=14, dtype=np.float64, **kw).B
        b = nb.solve_columns(G, m=14, dtype=np.float64, **kw).B
        np.testing.assert_array_equal(a.toarray(), b.toarray())
        ref = lae_fast.LinearAutoencoder(kw["l2"], dropout=kw.get("dropout", 0.0), xi=kw.get("xi", 0.0),
                                         dtype=np.float64).fit(X).B
        assert rel_err(a.toarray(), ref) < 1e-8
    E = np.random.default_rng(2).normal(size=(15, 3))
    a = nb.solve_columns_l3ae(lists, E, l2_x=1.0, l2_e=2.0, l2_f=1.0, m=14, dtype=np.float64).B
    b = nb.solve_columns_l3ae(G, E, l2_x=1.0, l2_e=2.0, l2_f=1.0, m=14, dtype=np.float64).B
    np.testing.assert_array_equal(a.toarray(), b.toarray())


# ---------------------------------------------------------------------------------------------
# restricted supports against brute-force solves
# ---------------------------------------------------------------------------------------------
def random_supports(n, seed, size=8):
    rng = np.random.default_rng(seed)
    P = np.zeros((n, n), dtype=bool)
    for j in range(n):
        P[rng.choice(n, size=size, replace=False), j] = True
    return P


@pytest.mark.parametrize("name", ["ease", "dlae", "rdlae"])
@pytest.mark.parametrize("source", ["dense", "lists"])
def test_random_supports_match_brute_force(X, name, source):
    l2, p, xi = FAMILY[name]
    G = dense_gram(X)
    n = G.shape[0]
    gamma = l2 + p / (1 - p) * np.diag(G)
    lists = nb.cooccurrence_candidates(X, 5)
    src, Gseen = (G, G) if source == "dense" else (lists, lists_gram(G, lists))
    P = random_supports(n, seed=7)
    got = nb.solve_columns(src, l2=l2, dropout=p, xi=xi, supports=P, dtype=np.float64)
    assert got.n_retried == 0
    B = got.B.toarray()
    for j, S in enumerate(supports_of(P + np.eye(n, dtype=bool))):
        ref = ref_column(Gseen, gamma, xi, S, j)
        np.testing.assert_allclose(B[S, j], ref, rtol=1e-9, atol=1e-12)
        assert np.count_nonzero(np.delete(B[:, j], S)) == 0
    assert not np.allclose(B, B.T)


@pytest.mark.parametrize("source", ["dense", "lists"])
def test_random_supports_match_brute_force_l3ae(X, source):
    G = dense_gram(X)
    n = G.shape[0]
    E = np.random.default_rng(3).normal(size=(n, 4))
    T = reference_text_matrix(E, 0.8)
    lists = nb.cooccurrence_candidates(X, 5)
    src, Gseen = (G, G) if source == "dense" else (lists, lists_gram(G, lists))
    P = random_supports(n, seed=8)
    B = nb.solve_columns_l3ae(src, E, l2_x=1.5, l2_e=2.5, l2_f=0.8, supports=P, dtype=np.float64).B.toarray()
    for j, S in enumerate(supports_of(P + np.eye(n, dtype=bool))):
        ref = ref_column(Gseen, np.full(n, 4.0), 0.0, S, j, text=T[:, j], l2_e=2.5)
        np.testing.assert_allclose(B[S, j], ref, rtol=1e-8, atol=1e-12)


def test_m_neighbour_supports_and_text_neighbours(X):
    G = dense_gram(X)
    n = G.shape[0]
    lists = nb.cooccurrence_candidates(X, 6)
    res = nb.solve_columns(lists, l2=4.0, m=4)
    B = res.B
    assert B.format == "csc" and B.has_sorted_indices
    for j, S in enumerate(supports_of(B)):
        assert j not in S  # EASE: the exactly-zero diagonal is not stored
        assert set(S) == set(lists.indices[j, :4][lists.indices[j, :4] >= 0])
    # L3AE with text neighbours: S_j = j ∪ top-m co-occurrence ∪ top-text_k text, values brute force
    E = np.random.default_rng(4).normal(size=(n, 3))
    H, inv = lae_fast.models.l3ae.text_factors(E, 1.0)
    tidx, _ = nb.text_candidates(E, H, inv, 3)
    got = nb.solve_columns_l3ae(lists, E, l2_x=1.0, l2_e=2.0, l2_f=1.0, m=4, text_k=3, dtype=np.float64)
    T = reference_text_matrix(E, 1.0)
    Gseen = lists_gram(G, lists)
    Bd = got.B.toarray()
    for j in range(n):
        S = np.union1d(np.union1d(lists.indices[j, :4], tidx[j]), [j])
        S = S[S >= 0]
        np.testing.assert_allclose(Bd[S, j], ref_column(Gseen, np.full(n, 3.0), 0, S, j, text=T[:, j], l2_e=2.0),
                                   rtol=1e-8, atol=1e-12)
        assert set(np.flatnonzero(Bd[:, j])) <= set(S)


@pytest.mark.parametrize("model", ["dlae", "l3ae"])
@pytest.mark.parametrize("source", ["dense", "lists"])
def test_refine_is_largest_abs_of_first_pass(X, source, model):
    G = dense_gram(X)
    n = G.shape[0]
    E = np.random.default_rng(6).normal(size=(n, 4))

    def solve(src, **kw):
        if model == "l3ae":
            return nb.solve_columns_l3ae(src, E, l2_x=1.0, l2_e=2.0, l2_f=0.5, dtype=np.float64, **kw)
        return nb.solve_columns(src, l2=3.0, dropout=0.1, xi=1.0, dtype=np.float64, **kw)

    lists = nb.cooccurrence_candidates(X, 8)
    src = G if source == "dense" else lists
    first_pattern = np.eye(n, dtype=bool)
    for j in range(n):
        row = lists.indices[j][lists.indices[j] >= 0]
        first_pattern[row, j] = True
    F = solve(src, supports=first_pattern).B.toarray()
    second_pattern = np.eye(n, dtype=bool)
    for j, S in enumerate(supports_of(first_pattern)):
        S = S[S != j]
        key = (np.abs(F[S, j]) * np.sqrt(np.diag(G)[S])).astype(np.float32)  # |b| √G_ii, as float32
        best = S[np.lexsort((S, -key))][:3]
        second_pattern[best, j] = True
    ref = solve(src, supports=second_pattern).B
    seen = []
    # PCG on the 9×9 first systems: 16 steps converge (n steps do in exact arithmetic), so the ranking is F's
    got = solve(src, m=3, refine=True, k=8, refine_iterations=16, block_size=7,
                progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(got.B.toarray(), ref.toarray())
    assert seen == [(7, n), (14, n), (21, n), (28, n), (30, n)]
    assert set(got.seconds) >= {"solve", "candidates"}


# ---------------------------------------------------------------------------------------------
# retries and bad input
# ---------------------------------------------------------------------------------------------
def test_retry_on_indefinite_dense_system():
    G = np.array([[1.0, 3.0], [3.0, 1.0]])  # not a Gram matrix: indefinite
    got = nb.solve_columns(G, l2=0.01, xi=1.0, supports=np.ones((2, 2)), dtype=np.float64)
    assert got.n_retried == 2 and got.retried_columns.tolist() == [0, 1]
    # the documented rule: ridge + 10^(t-5)·max(1, max A_aa), first t that factors (here t = 6)
    gamma = np.full(2, 0.01 + 10.0 ** (6 - 5) * 1.01)
    B = got.B.toarray()
    for j in range(2):
        np.testing.assert_allclose(B[:, j], ref_column(G, gamma, 1.0, np.arange(2), j), rtol=1e-12)


def test_lists_from_slices_are_made_contiguous(X):
    wide = nb.cooccurrence_candidates(X, 8)
    narrow = nb.CandidateLists(wide.indices[:, :3], wide.counts[:, :3], wide.item_counts)
    assert narrow.indices.flags.c_contiguous and narrow.counts.flags.c_contiguous
    got = nb.solve_columns(narrow, l2=2.0, m=3, dtype=np.float64).B
    np.testing.assert_array_equal(got.toarray(), nb.solve_columns(nb.cooccurrence_candidates(X, 3), l2=2.0, m=3,
                                                                  dtype=np.float64).B.toarray())


def test_retry_on_lists_with_missing_pairs():
    # true G = 10 on the diagonal, 9 off it (PSD); b, c are each only in a's list, so G_bc is taken as 0
    lists = nb.CandidateLists(np.array([[1, 2], [0, -1], [0, -1]], np.int32),
                              np.array([[9, 9], [9, 0], [9, 0]], np.float32), np.full(3, 10.0))
    got = nb.solve_columns(lists, l2=0.1, xi=1.0, supports=np.ones((3, 3)), dtype=np.float64)
    assert got.retried_columns.tolist() == [0, 1, 2]
    assert np.isfinite(got.B.data).all()
    got = nb.solve_columns(lists, l2=0.1, m=1, dtype=np.float32)  # supports {a, b}, {b, a}, {c, a}: PD
    assert got.n_retried == 0


def test_retry_in_both_passes_of_a_refined_column():
    # hand-made lists (counts above the item counts): the 3x3 first system of column a and
    # its kept 2x2 block {a, b} are both indefinite at l2 = 0.1
    lists = nb.CandidateLists(np.array([[1, 2], [0, -1], [0, -1]], np.int32),
                              np.array([[12, 1], [12, 0], [1, 0]], np.float32), np.full(3, 10.0))
    got = nb.solve_columns(lists, l2=0.1, xi=1.0, m=1, refine=True, k=2, dtype=np.float64)
    assert got.retried_columns.tolist() == [0, 1]
    B = got.B.toarray()
    assert set(np.flatnonzero(B[:, 0])) == {0, 1}
    # the second solve on {a, b} factors at t = 5: ridge 0.1 + 10^0 · 10.1
    Ghat = np.array([[10.0, 12, 1], [12, 10, 0], [1, 0, 10]])
    np.testing.assert_allclose(B[[0, 1], 0], ref_column(Ghat, np.full(3, 0.1 + 10.1), 1.0, np.array([0, 1]), 0),
                               rtol=1e-12)


def test_narrow_lists_warn(X):
    lists = nb.cooccurrence_candidates(X, 6)
    with pytest.warns(RuntimeWarning, match=f"Build the lists with k >= {nb.LOOKUP_FACTOR * 4}"):
        nb.solve_columns(lists, l2=1.0, m=4)
    with pytest.warns(RuntimeWarning, match=f"k >= {nb.LOOKUP_FACTOR * (4 + 3)}"):
        nb.solve_columns_l3ae(lists, np.ones((X.shape[1], 2)), l2_x=1.0, l2_e=1.0, l2_f=1.0, m=4, text_k=3)
    wide = nb.cooccurrence_candidates(X, 29)  # no list is full: every co-occurring pair is listed
    assert (wide.indices[:, -1] < 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb.solve_columns(wide, l2=1.0, m=20)
        nb.solve_columns(nb.cooccurrence_candidates(X, 16), l2=1.0, m=4)


def test_bad_inputs(X):
    G = dense_gram(X)
    n = G.shape[0]
    lists = nb.cooccurrence_candidates(X, 4)
    for bad_k in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            nb.cooccurrence_candidates(X, bad_k)
        with pytest.raises(ValueError, match="k must be a positive integer"):
            nb.candidates_from_dense(G, bad_k)
    with pytest.raises(ValueError, match="square"):
        nb.candidates_from_dense(G[:, :-1], 3)
    with pytest.raises(ValueError, match="square"):
        nb.solve_columns(G[:-1], l2=1.0, m=2)
    with pytest.raises(ValueError, match="NaN"):
        nb.solve_columns(np.full((3, 3), np.nan), l2=1.0, m=1)
    with pytest.raises(ValueError, match="supports must be"):
        nb.solve_columns(G, l2=1.0, supports=np.ones((n, n - 1)))
    with pytest.raises(ValueError, match="either supports or m"):
        nb.solve_columns(G, l2=1.0, m=2, supports=np.ones((n, n)))
    with pytest.raises(ValueError, match="pass m"):
        nb.solve_columns(G, l2=1.0)
    with pytest.raises(ValueError, match="k >= m"):
        nb.solve_columns(G, l2=1.0, m=4, refine=True, k=2)
    with pytest.raises(ValueError, match=f"build them with k >= {nb.refine_width(4)}"):
        nb.solve_columns(lists, l2=1.0, m=4, refine=True)
    with pytest.raises(ValueError, match="dropout"):
        nb.solve_columns(lists, l2=1.0, m=2, dropout=1.0)
    with pytest.raises(ValueError, match="l2_x \\+ l2_e"):
        nb.solve_columns_l3ae(lists, np.ones((n, 2)), l2_x=-1.0, l2_e=0.5, l2_f=1.0, m=2)
    E = np.random.default_rng(0).normal(size=(n, 3))
    E[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        nb.solve_columns_l3ae(lists, E, l2_x=1.0, l2_e=1.0, l2_f=1.0, m=2)
    with pytest.raises(ValueError, match="NaN"):
        nb.text_candidates(E, np.zeros_like(E), np.ones(n), 3)
    with pytest.raises(ValueError, match="rows"):
        nb.solve_columns_l3ae(lists, np.ones((n + 1, 2)), l2_x=1.0, l2_e=1.0, l2_f=1.0, m=2)
    with pytest.raises(ValueError, match="shape of E"):
        nb.text_candidates(np.ones((n, 3)), np.ones((n, 2)), np.ones(n), 3)
    with pytest.raises(ValueError, match="k must be"):
        nb.text_candidates(np.ones((n, 3)), np.ones((n, 3)), np.ones(n), 0)
    with pytest.raises(ValueError, match="shape"):
        nb.CandidateLists(np.zeros((3, 2), np.int32), np.zeros((3, 3), np.float32), np.zeros(3))


# ---------------------------------------------------------------------------------------------
# ranking against a sparse B
# ---------------------------------------------------------------------------------------------
def sparse_dyadic(n, density, seed, negative_shift=0.0):
    """Sparse B of multiples of 1/16 (sums exact in float32, so ties are real ties)."""
    rng = np.random.default_rng(seed)
    B = dyadic_matrix(n, seed=seed) - np.float32(negative_shift)
    B[rng.random((n, n)) > density] = 0
    return sp.csr_matrix(B)


def histories(n_users, n, seed):
    X = random_binary(n_users, n, 0.15, seed=seed, empty_users=(0, 5)).tolil()
    X[1, :] = 1  # a user with every item
    return sp.csr_matrix(X)


def assert_same(got, ref):
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_array_equal(got[1], ref[1])
    assert got[0].dtype == np.int32 and got[1].dtype == np.float32


@pytest.mark.parametrize("N", [1, 5, 40, 60])
@pytest.mark.parametrize("density,shift", [(0.1, 0.0), (0.3, 0.0), (0.2, 2.0), (0.05, 4.5)])
def test_topk_sparse_equals_dense_topk(N, density, shift):
    n = 40
    B = sparse_dyadic(n, density, seed=int(density * 100), negative_shift=shift)
    X = histories(30, n, seed=1)
    ref = lae_fast.topk(X, B.toarray(), N)
    reached = (X @ B).toarray() != 0
    if shift and N >= 5:  # unreached items (score 0) above reached negative ones, and score ties
        assert any((ref[1][u] == 0).any() and not reached[u, ref[0][u][ref[1][u] == 0]].all()
                   for u in range(X.shape[0]))
    assert_same(nb.topk_sparse(X, B, N), ref)
    assert_same(nb.topk_sparse(X, B.astype(np.float64), N), ref)
    assert_same(nb.topk_sparse(X, B.tocsc(), N, num_threads=2), ref)


def test_topk_sparse_filters_whitelist_and_zero_scores():
    n = 40
    B = sparse_dyadic(n, 0.15, seed=3, negative_shift=1.0)
    X = histories(25, n, seed=2)
    for kw in (dict(filter_items=[3, 3, 17, 0, 39]), dict(items=[5, 2, 9, 30, 2, 11, 0]),
               dict(items=[5, 2, 9, 30, 11], filter_items=[9]), dict(filter_already_liked_items=False),
               dict(items=[]), dict(filter_items=np.arange(n))):
        for N in (3, 12, 50):
            assert_same(nb.topk_sparse(X, B, N, **kw), lae_fast.topk(X, B.toarray(), N, **kw))
    # row 0 of B reaches items 1 and 2 with negative scores: the unreached 3, 4, 5 (score 0) win, by index
    Bneg = np.zeros((6, 6), np.float32)
    Bneg[0, 1], Bneg[0, 2] = -1.5, -0.5
    Xu = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0]], np.float32))
    ids, scores = nb.topk_sparse(Xu, sp.csr_matrix(Bneg), 5)
    assert ids.tolist() == [[3, 4, 5, 2, 1]] and scores.tolist() == [[0, 0, 0, -0.5, -1.5]]


def test_topk_sparse_on_a_solved_B_and_threads(X):
    lists = nb.cooccurrence_candidates(X, 8)
    B = nb.ranking_csr(nb.solve_columns(lists, l2=3.0, m=4, refine=True).B)
    assert B.format == "csr" and B.indptr.dtype == np.int64 and B.indices.dtype == np.int32
    assert nb.ranking_csr(B) is B
    one = nb.topk_sparse(X, B, 7, num_threads=1)
    assert_same(nb.topk_sparse(X, B, 7, num_threads=2), one)
    ids, scores = one
    dense = (X.toarray() != 0) @ B.toarray().astype(np.float64)
    for u in range(X.shape[0]):
        ok = ids[u] >= 0
        np.testing.assert_allclose(scores[u, ok], dense[u, ids[u, ok]], rtol=1e-5, atol=1e-6)


def test_topk_sparse_bad_inputs():
    B = sparse_dyadic(5, 0.5, seed=0)
    X = histories(8, 5, seed=0)
    with pytest.raises(TypeError, match="sparse"):
        nb.topk_sparse(X, B.toarray(), 2)
    with pytest.raises(ValueError, match="square"):
        nb.topk_sparse(X, B[:, :4], 2)
    with pytest.raises(ValueError, match="N must be"):
        nb.topk_sparse(X, B, -1)
    with pytest.raises(ValueError, match="items"):
        nb.topk_sparse(X[:, :4], B, 2)
    ids, scores = nb.topk_sparse(X, B, 0)
    assert ids.shape == (X.shape[0], 0)


# ---------------------------------------------------------------------------------------------
# oriented lists (the look-up's form of the candidate lists)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_oriented_lists_hold_each_known_pair_once(threads):
    """Every pair known to either item's list is in exactly one oriented list, that of the item with
    fewer users (ties: the lower index), with its co-occurrence count; no other pair is."""
    X = power_law(300, 90, 8, seed=4)
    G = dense_gram(X)
    lists = nb.cooccurrence_candidates(X, 12)
    o = nb._oriented_lists(lists, nb._flat_lists(lists), threads)
    n = lists.n_items
    pop = np.diag(G)
    want = {}
    for a in range(n):
        for b in lists.indices[a][lists.indices[a] >= 0]:
            owner, other = (a, b) if (pop[a], a) < (pop[b], b) else (b, a)
            want[(owner, other)] = G[a, b]
    got = {}
    for a in range(n):
        items = o.items[o.start[a]:o.start[a] + o.length[a]]
        counts = o.counts[o.start[a]:o.start[a] + o.length[a]]
        assert np.unique(items).size == items.size
        for b, c in zip(items, counts):
            got[(a, int(b))] = c
    assert got == want
    assert o.length.sum() < nb._flat_lists(lists).length.sum()  # pairs in both lists are stored once


@pytest.mark.parametrize("model", ["ease", "l3ae"])
def test_oriented_and_plain_lists_solve_to_the_same_B(monkeypatch, model):
    """The oriented lists are an index, not an approximation: where memory is short the lists are
    scanned as they are, and B is the same to the last bit."""
    from lae_fast import neighbors

    X = power_law(400, 120, 10, seed=9)
    E = np.random.default_rng(0).normal(size=(120, 6))

    def fit():
        lists = nb.cooccurrence_candidates(X, 40)  # fresh: the look-up's form is kept with the lists
        if model == "ease":
            B = nb.solve_columns(lists, l2=5.0, dropout=0.2, xi=0.5, m=16, refine=True, k=32).B
        else:
            B = nb.solve_columns_l3ae(lists, E, l2_x=2.0, l2_e=3.0, l2_f=0.5, m=10, text_k=4).B
        return B, lists.lookup_lists(2)

    oriented, index = fit()
    monkeypatch.setattr(neighbors, "available_memory", lambda: 1024)  # too little for the index
    plain, flat = fit()
    assert index.length.sum() < flat.length.sum()  # the first fit did use the oriented lists
    assert (oriented != plain).nnz == 0 and np.array_equal(oriented.indices, plain.indices)


@pytest.mark.parametrize("how", ["popularity", "random"])
def test_relabelled_gram_gives_the_same_lists_and_B(how):
    """A G stored in another item order (the route's: by popularity, least used first) is read through its
    order: the same candidate lists and the same B, to the last bit, for the family and L3AE."""
    X = power_law(300, 90, 9, seed=4)
    E = np.random.default_rng(1).normal(size=(90, 5))
    G = dense_gram(X).astype(np.float32)
    order = (nb.popularity_order(np.diag(G)) if how == "popularity"
             else np.random.default_rng(2).permutation(90).astype(np.int32))
    counts = np.diag(G)
    if how == "popularity":  # least used first, ties to the lower index
        assert np.all(np.diff(counts[order]) >= 0)
        ties = np.diff(counts[order]) == 0
        assert np.all(np.diff(order)[ties] > 0)
    Xr = nb.relabel_columns(sp.csr_matrix(X), order)
    assert Xr.has_sorted_indices and np.array_equal(Xr.toarray(), sp.csr_matrix(X).toarray()[:, order])
    relabelled = nb.RelabelledGram(dense_gram(Xr).astype(np.float32), order)
    assert np.array_equal(relabelled.item_counts, counts)
    plain_lists, new_lists = nb.candidates_from_dense(G, 30), nb.candidates_from_dense(relabelled, 30)
    assert np.array_equal(plain_lists.indices, new_lists.indices)
    assert np.array_equal(plain_lists.counts, new_lists.counts)
    for solve in (lambda src: nb.solve_columns(src, l2=5.0, dropout=0.2, xi=0.4, m=12, refine=True).B,
                  lambda src: nb.solve_columns(src, l2=5.0, m=89).B,
                  lambda src: nb.solve_columns_l3ae(src, E, l2_x=2.0, l2_e=3.0, l2_f=0.5, m=10, text_k=3).B):
        plain, new = solve(G), solve(relabelled)
        assert np.array_equal(plain.indptr, new.indptr) and np.array_equal(plain.indices, new.indices)
        assert np.array_equal(plain.data, new.data)


def test_relabelled_gram_order_must_be_a_permutation():
    G = np.eye(4, dtype=np.float32)
    for order in ([0, 1, 2], [0, 1, 1, 3], [0, 1, 2, 4]):
        with pytest.raises(ValueError, match="permutation of the 4 items"):
            nb.RelabelledGram(G, np.array(order))


@pytest.mark.parametrize("row, message", [([1, 5], "holds 5 at position 1"), ([-2, 1], "holds -2 at position 0"),
                                          ([-1, 1], "holds 1 at position 1")])
def test_lists_with_out_of_range_or_misplaced_items_are_refused(row, message):
    """The kernels index with the list entries unchecked: ids outside [0, n) or after the -1
    padding are refused when the lists are made, with the list and the position."""
    indices = np.array([[1, 2], [0, -1], [0, 1]], np.int32)
    indices[1] = row
    with pytest.raises(ValueError, match=f"candidate list 1 {message}"):
        nb.CandidateLists(indices, np.ones((3, 2), np.float32), np.ones(3))
    nb.CandidateLists(np.array([[1, 2], [0, -1], [-1, -1]], np.int32), np.ones((3, 2), np.float32), np.ones(3))


def test_lookup_lists_are_made_once_and_travel_with_the_lists():
    import pickle

    lists = nb.cooccurrence_candidates(power_law(200, 60, 8, seed=1), 20)
    first = lists.lookup_lists(2)
    assert lists.lookup_lists(1) is first
    copy = pickle.loads(pickle.dumps(lists))  # as shipped to dask workers
    np.testing.assert_array_equal(copy.lookup_lists(2).items, first.items)
    np.testing.assert_array_equal(copy.indices, lists.indices)


# ---------------------------------------------------------------------------------------------
# threads
# ---------------------------------------------------------------------------------------------
def test_one_and_two_threads_identical():
    X = power_law(400, 120, 10, seed=9)
    one = nb.cooccurrence_candidates(X, 40, num_threads=1)
    two = nb.cooccurrence_candidates(X, 40, num_threads=2)
    np.testing.assert_array_equal(one.indices, two.indices)
    kw = dict(l2=5.0, dropout=0.2, xi=0.5, m=16, refine=True, k=32, block_size=50)
    a = nb.solve_columns(one, num_threads=1, **kw).B
    b = nb.solve_columns(two, num_threads=2, **kw).B
    assert (a != b).nnz == 0 and np.array_equal(a.indices, b.indices)
    E = np.random.default_rng(0).normal(size=(120, 6))
    kw = dict(l2_x=2.0, l2_e=3.0, l2_f=0.5, m=10, text_k=4)
    a = nb.solve_columns_l3ae(one, E, num_threads=1, **kw).B
    b = nb.solve_columns_l3ae(one, E, num_threads=2, **kw).B
    assert (a != b).nnz == 0
    G = dense_gram(X)
    assert (nb.solve_columns(G, l2=5.0, m=8, num_threads=1).B != nb.solve_columns(G, l2=5.0, m=8, num_threads=2).B).nnz == 0


def test_route_memory_preflight_says_what_to_shrink(monkeypatch):
    """A neighbourhood fit that cannot fit is refused before any work, with the lists' size and the fix."""
    from lae_fast import _memory

    X = power_law(200, 120, mean_len=8, seed=2)
    monkeypatch.delenv("LAE_FAST_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(_memory, "available_memory", lambda: 30_000)  # 30 kB: X fits, the route does not
    width = nb.LOOKUP_FACTOR * nb.refine_width(8)
    with pytest.raises(MemoryError, match=rf"neighbourhood route \(120 items, 8 neighbours.*candidate lists alone "
                                          rf"take .* \({width} items each, {nb.LOOKUP_FACTOR}x the first support\); "
                                          r"pass a smaller neighbors=m"):
        lae_fast.EASE(neighbors=8).fit(X)
    with pytest.raises(MemoryError, match="pass a smaller neighbors=m"):
        lae_fast.EASE(neighbors=8).check_fit_memory(120)


@pytest.mark.parametrize("source", ["dense", "lists"])
def test_pcg_first_pass_ranks_like_the_exact_one(X, source):
    """The refinement's first pass by PCG (the default) keeps the supports of the exact first
    solve here; with a single PCG step it may keep others, but every column is still the
    exact solution on the support it kept."""
    G = dense_gram(X)
    lists = nb.cooccurrence_candidates(X, 16)
    src = G if source == "dense" else lists
    kw = dict(l2=3.0, dropout=0.1, xi=1.0, m=4, refine=True, k=8, dtype=np.float64)
    exact = nb.solve_columns(src, refine_iterations=0, **kw).B
    assert (nb.solve_columns(src, **kw).B != exact).nnz == 0
    rough = nb.solve_columns(src, refine_iterations=1, **kw).B.toarray()
    Gseen = G if source == "dense" else lists_gram(G, lists)
    gamma = 3.0 + 0.1 / 0.9 * np.diag(G)
    for j in range(G.shape[0]):
        S = np.union1d(np.flatnonzero(rough[:, j]), [j])
        np.testing.assert_allclose(rough[S, j], ref_column(Gseen, gamma, 1.0, S, j), rtol=1e-8, atol=1e-12)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="refine_iterations"):
            nb.solve_columns(src, refine_iterations=bad, **kw)
