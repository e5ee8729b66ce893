"""L3AE and the text-only baselines (docs/MODELS.md §2) against literal and brute-force references."""
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
from lae_fast import EASE, L3AE, EASEText, NotFittedError, TextSimilarity
from lae_fast.models import MODEL_REGISTRY


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------
def dense(X):
    return (X.toarray() != 0).astype(np.float64)


def reference_S(E, l2_f):
    """Phase 1 literally: P_F = (FᵀF + λ_F I)⁻¹ (n×n), S = I − P_F diag(1/diag P_F)."""
    F = np.asarray(E, np.float64).T
    P_F = np.linalg.inv(F.T @ F + l2_f * np.eye(F.shape[1]))
    return np.eye(F.shape[1]) - P_F / np.diag(P_F)[None, :]


def reference_B(X, E, l2_x, l2_e, l2_f):
    """docs/MODELS.md §2 literally, as the authors' formulation: two n×n inverses and P @ S in float64."""
    G = dense(X).T @ dense(X)
    n = G.shape[0]
    S = reference_S(E, l2_f)
    P = np.linalg.inv(G + (l2_x + l2_e) * np.eye(n))
    PS = P @ S
    B = l2_e * PS - P * ((1.0 + l2_e * np.diag(PS)) / np.diag(P))[None, :]
    np.fill_diagonal(B, 0.0)
    return B


def kkt_zero_diag(A, rhs_cols):
    """Column j: argmin_b bᵀAb − 2 bᵀ r_j subject to b_j = 0, via the KKT system (A symmetric PD).

    Stationarity 2A b − 2 r_j + μ e_j = 0 and b_j = 0 give
    [[2A, e_j], [e_jᵀ, 0]] [b; μ] = [2 r_j; 0].
    """
    n = A.shape[0]
    out = np.empty((n, n))
    for j in range(n):
        K = np.zeros((n + 1, n + 1))
        K[:n, :n] = 2.0 * A
        K[j, n] = K[n, j] = 1.0
        rhs = np.concatenate([2.0 * rhs_cols[:, j], [0.0]])
        b = np.linalg.solve(K, rhs)[:n]
        assert abs(b[j]) < 1e-12
        out[:, j] = b
    return out


def brute_force_S(E, l2_f):
    """S minimises ||F − FS||² + λ_F||S||², diag(S) = 0, column by column."""
    F = np.asarray(E, np.float64).T
    K = F.T @ F
    return kkt_zero_diag(K + l2_f * np.eye(K.shape[0]), K)


def brute_force_B(X, E, l2_x, l2_e, l2_f):
    """B minimises ||X − XB||² + λ_X||B||² + λ_E||B − S||², diag(B) = 0, column by column.

    Expanding column j: bᵀ(G + (λ_X+λ_E)I)b − 2bᵀ(G e_j + λ_E s_j) + const.
    """
    G = dense(X).T @ dense(X)
    S = brute_force_S(E, l2_f)
    return kkt_zero_diag(G + (l2_x + l2_e) * np.eye(G.shape[0]), G + l2_e * S)


def relerr(a, ref):
    return np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max()


def random_X(n_users=80, n_items=14, density=0.3, seed=0):
    rng = np.random.default_rng(seed)
    dens = density * np.linspace(0.25, 2.0, n_items)[rng.permutation(n_items)]
    return sp.csr_matrix((rng.random((n_users, n_items)) < dens[None, :]).astype(np.float32))


def random_E(n_items, d, seed=0, unit=True, zero_rows=()):
    E = np.random.default_rng(seed + 100).normal(size=(n_items, d))
    if unit:
        E /= np.linalg.norm(E, axis=1, keepdims=True)
    E[list(zero_rows)] = 0.0
    return E


N_ITEMS = 14
# (l2_x, l2_e, l2_f): moderate, strong text pull, negative l2_x, tiny λ_F
PARAMS = [(2.0, 3.0, 0.5), (0.5, 20.0, 2.0), (-1.5, 4.0, 0.1), (5.0, 1.0, 0.05)]
DIMS = [4, 9, 40]  # d < n and d > n (n = 14)


@pytest.fixture(scope="module")
def X():
    return random_X(n_items=N_ITEMS, seed=1)


# ---------------------------------------------------------------------------------------------
# L3AE
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("params", PARAMS)
def test_low_rank_equals_two_inverse_reference_float64(X, d, params):
    E = random_E(N_ITEMS, d, seed=d)
    model = L3AE(*params, dtype=np.float64).fit(X, E)
    ref = reference_B(X, E, *params)
    assert model.B_.dtype == np.float64 and model.B_.shape == (N_ITEMS, N_ITEMS)
    assert relerr(model.B_, ref) < 1e-8
    assert np.all(np.diag(model.B_) == 0)


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("params", PARAMS)
def test_low_rank_equals_two_inverse_reference_float32(X, d, params):
    E = random_E(N_ITEMS, d, seed=d)
    model = L3AE(*params).fit(X, E)
    assert model.B_.dtype == np.float32
    assert relerr(model.B_, reference_B(X, E, *params)) < 1e-4
    assert np.all(np.diag(model.B_) == 0)


@pytest.mark.parametrize("d", [5, 30])
@pytest.mark.parametrize("params", [(2.0, 3.0, 0.5), (-1.5, 4.0, 0.1)])
def test_brute_force_kkt_solution(X, d, params):
    """Independent check of the objective, not of the closed form: a per-column KKT solve."""
    E = random_E(N_ITEMS, d, seed=3 * d, unit=False)
    bf = brute_force_B(X, E, *params)
    assert relerr(L3AE(*params, dtype=np.float64).fit(X, E).B_, bf) < 1e-8
    # and the reference formula solves the same problem (keeps the reference honest)
    assert relerr(reference_B(X, E, *params), bf) < 1e-9


def test_brute_force_with_empty_items_and_zero_embeddings():
    X = random_X(n_items=N_ITEMS, seed=5).tolil()
    X[:, 3] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    E = random_E(N_ITEMS, 6, seed=2, zero_rows=(3, 7))
    B = L3AE(1.0, 2.0, 0.3, dtype=np.float64).fit(X, E).B_
    assert np.all(np.isfinite(B))
    assert relerr(B, brute_force_B(X, E, 1.0, 2.0, 0.3)) < 1e-8


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_l2_e_zero_is_ease(X, dtype, tol):
    E = random_E(N_ITEMS, 6)
    b = L3AE(l2_x=3.0, l2_e=0.0, l2_f=0.7, dtype=dtype).fit(X, E).B_
    ease = EASE(3.0, dtype=dtype).fit(X).B_
    assert relerr(b, ease) <= tol
    # with l2_e > 0 the text really changes B
    assert relerr(L3AE(3.0, 5.0, 0.7, dtype=dtype).fit(X, E).B_, ease) > 1e-2


def test_large_l2_e_pulls_B_towards_S(X):
    E = random_E(N_ITEMS, 6)
    S = reference_S(E, 0.5)
    far = relerr(L3AE(1.0, 1.0, 0.5, dtype=np.float64).fit(X, E).B_, S)
    near = relerr(L3AE(1.0, 1e6, 0.5, dtype=np.float64).fit(X, E).B_, S)
    assert near < 1e-3 < far


def test_negative_l2_x_works_when_positive_definite(X):
    E = random_E(N_ITEMS, 6)
    model = L3AE(l2_x=-50.0, l2_e=52.0, l2_f=1.0, dtype=np.float64).fit(X, E)
    assert relerr(model.B_, reference_B(X, E, -50.0, 52.0, 1.0)) < 1e-8


@pytest.mark.parametrize("l2_x, l2_e", [(-5.0, 5.0), (-10.0, 3.0), (0.0, 0.0)])
def test_non_positive_ridge_is_a_clear_error(X, l2_x, l2_e):
    with pytest.raises(ValueError, match=r"l2_x \+ l2_e must be > 0"):
        L3AE(l2_x, l2_e, 1.0).fit(X, random_E(N_ITEMS, 4))


def test_failed_cholesky_names_the_ridge(X, monkeypatch):
    """Only round-off can make G + (l2_x + l2_e)I non-PD once the sum is > 0; the message must say what to raise."""
    from lae_fast.models import _closed_form

    def fail(a, **kw):
        raise np.linalg.LinAlgError("the matrix is not positive definite (leading minor of order 3 failed)")

    monkeypatch.setattr(_closed_form, "spd_inverse_inplace", fail)
    with pytest.raises(np.linalg.LinAlgError, match=r"raise l2_x \+ l2_e \(now -1.0 \+ 2.0 = 1.0"):
        L3AE(-1.0, 2.0, 1.0).fit(X, random_E(N_ITEMS, 4))


@pytest.mark.parametrize("kwargs, match", [
    (dict(l2_e=-1.0), "l2_e must be >= 0"),
    (dict(l2_f=0.0), "l2_f must be > 0"),
    (dict(l2_f=-2.0), "l2_f must be > 0"),
    (dict(l2_x=float("nan")), "l2_x must be finite"),
    (dict(dtype=np.int32), "dtype must be float32 or float64"),
])
def test_bad_hyper_parameters(X, kwargs, match):
    with pytest.raises(ValueError, match=match):
        L3AE(**kwargs).fit(X, random_E(N_ITEMS, 4))


@pytest.mark.parametrize("cls", [L3AE, EASEText, TextSimilarity])
def test_bad_embeddings(X, cls):
    model = cls()
    with pytest.raises(ValueError, match=r"has 13 rows but X has 14 items"):
        model.fit(X, random_E(13, 4))
    with pytest.raises(ValueError, match="must be 2-D"):
        model.fit(X, np.ones(N_ITEMS))
    with pytest.raises(ValueError, match="at least one dimension"):
        model.fit(X, np.ones((N_ITEMS, 0)))
    E = random_E(N_ITEMS, 4)
    E[2, 1] = np.nan
    E[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN or infinite values in 2 rows \(e.g. row 2\)"):
        model.fit(X, E)
    with pytest.raises(TypeError, match="real numbers"):
        model.fit(X, np.full((N_ITEMS, 3), "a"))
    with pytest.raises(TypeError, match="real numbers"):
        model.fit(X, random_E(N_ITEMS, 3) * 1j)
    with pytest.raises(TypeError, match="dense"):
        model.fit(X, sp.csr_matrix(random_E(N_ITEMS, 3)))
    with pytest.raises(TypeError, match="required"):
        model.fit(X, None)


def test_embeddings_accept_float32_int_and_lists(X):
    E = np.random.default_rng(0).integers(-3, 4, size=(N_ITEMS, 5))
    a = L3AE(1.0, 2.0, 0.5, dtype=np.float64).fit(X, E).B_
    b = L3AE(1.0, 2.0, 0.5, dtype=np.float64).fit(X, E.tolist()).B_
    c = L3AE(1.0, 2.0, 0.5, dtype=np.float64).fit(X, E.astype(np.float32)).B_
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert relerr(a, reference_B(X, E, 1.0, 2.0, 0.5)) < 1e-8


def test_dense_X_and_item_ids(X, interactions_like):
    E = random_E(N_ITEMS, 6)
    a = L3AE(1.0, 2.0, 0.5).fit(X, E)
    b = L3AE(1.0, 2.0, 0.5).fit(X.toarray(), E)
    np.testing.assert_array_equal(a.B_, b.B_)
    np.testing.assert_array_equal(a.item_ids_, np.arange(N_ITEMS))
    ids = np.arange(N_ITEMS) * 10 + 7
    c = L3AE(1.0, 2.0, 0.5).fit(interactions_like(X, ids), E)
    np.testing.assert_array_equal(c.B_, a.B_)
    np.testing.assert_array_equal(c.item_ids_, ids)


def test_threads_do_not_change_B():
    X = random_X(300, 120, 0.1, seed=4)
    E = random_E(120, 16)
    a = L3AE(5.0, 10.0, 1.0, num_threads=1).fit(X, E).B_
    b = L3AE(5.0, 10.0, 1.0, num_threads=2).fit(X, E).B_
    assert relerr(a, b) < 1e-5


def _traced_peak(func):
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fit_uses_one_n_by_n_buffer():
    """An L3AE fit peaks no more than half an n×n matrix above an EASE fit on the same data.

    Forming P·S, P_F or a second n×n buffer would add at least one whole n×n matrix.
    """
    n, d = 800, 16
    X = random_X(800, n, 0.03, seed=6)
    E = random_E(n, d)
    L3AE(5.0, 10.0, 1.0).fit(X, E)  # warm-up: lazy imports, thread-pool controller
    EASE(15.0).fit(X)
    for dtype in (np.float32, np.float64):
        ease = _traced_peak(lambda: EASE(15.0, dtype=dtype).fit(X))
        l3ae = _traced_peak(lambda: L3AE(5.0, 10.0, 1.0, dtype=dtype).fit(X, E))
        one = n * n * np.dtype(dtype).itemsize
        assert l3ae < ease + 0.5 * one, (dtype, l3ae / one, ease / one)


def test_recommend_scores_are_x_times_B(X):
    model = L3AE(1.0, 2.0, 0.5, dtype=np.float64).fit(X, random_E(N_ITEMS, 6))
    ids, scores = model.recommend(X[:5], N=3)
    expected = X[:5].toarray() @ model.B_
    for u in range(5):
        np.testing.assert_allclose(scores[u], expected[u, ids[u]], rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# text-only baselines
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [4, 40])
@pytest.mark.parametrize("l2_f", [0.05, 1.0, 10.0])
def test_ease_text_equals_reference_S(X, d, l2_f):
    E = random_E(N_ITEMS, d, seed=d, zero_rows=(1,))
    ref = reference_S(E, l2_f)
    assert np.abs(np.diag(ref)).max() < 1e-12
    b64 = EASEText(l2_f, dtype=np.float64).fit(X, E).B_
    assert relerr(b64, ref) < 1e-8
    assert relerr(EASEText(l2_f).fit(X, E).B_, ref) < 1e-4
    assert np.all(np.diag(b64) == 0)
    # item 1 has no text: nothing predicts it
    assert np.all(b64[:, 1] == 0)


def test_ease_text_solves_phase_one(X):
    E = random_E(N_ITEMS, 8, unit=False)
    assert relerr(EASEText(0.3, dtype=np.float64).fit(X, E).B_, brute_force_S(E, 0.3)) < 1e-8


def test_ease_text_bad_l2_f(X):
    with pytest.raises(ValueError, match="l2_f must be > 0"):
        EASEText(0.0).fit(X, random_E(N_ITEMS, 4))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_text_similarity(X, dtype):
    E = random_E(N_ITEMS, 7)
    B = TextSimilarity(dtype=dtype).fit(X, E).B_
    ref = E @ E.T
    np.fill_diagonal(ref, 0)
    assert B.dtype == dtype
    assert relerr(B, ref) < (1e-6 if dtype == np.float32 else 1e-13)
    assert np.all(np.diag(B) == 0)


# ---------------------------------------------------------------------------------------------
# estimator contract and model files
# ---------------------------------------------------------------------------------------------
def test_registry_params_and_repr():
    assert MODEL_REGISTRY["l3ae"] is L3AE
    assert MODEL_REGISTRY["ease-text"] is EASEText
    assert MODEL_REGISTRY["text-similarity"] is TextSimilarity
    m = L3AE()
    assert m.get_params() == dict(l2_x=300.0, l2_e=100.0, l2_f=1.0, dtype=np.float32, num_threads=None,
                                  neighbors=None)
    assert repr(m) == "L3AE(l2_x=300.0, l2_e=100.0, l2_f=1.0, num_threads=None, neighbors=None)"
    assert lae_fast.L3AE is L3AE and "L3AE" in lae_fast.__all__


@pytest.mark.parametrize("cls", [L3AE, EASEText, TextSimilarity])
def test_not_fitted(cls):
    with pytest.raises(NotFittedError):
        cls().B


def test_fit_returns_self(X):
    E = random_E(N_ITEMS, 4)
    for model in (L3AE(1.0, 1.0), EASEText(), TextSimilarity()):
        assert model.fit(X, E) is model


@pytest.mark.parametrize("model", [
    L3AE(-2.0, 7.5, 0.25, dtype=np.float64, num_threads=1),
    L3AE(),
    EASEText(0.5, dtype=np.float64),
    TextSimilarity(dtype=np.float32),
], ids=["l3ae64", "l3ae-defaults", "ease-text", "text-sim"])
def test_save_load_round_trip(X, tmp_path, model, interactions_like):
    ids = np.arange(N_ITEMS) + 1000
    model.fit(interactions_like(X, ids), random_E(N_ITEMS, 5))
    path = tmp_path / "model.laefast"
    model.save(path)
    for loaded in (type(model).load(path), lae_fast.load_model(path, mmap=False)):
        assert type(loaded) is type(model)
        assert loaded.get_params() == model.get_params()
        np.testing.assert_array_equal(loaded.B_, model.B_)
        assert loaded.B_.dtype == model.B_.dtype
        np.testing.assert_array_equal(loaded.item_ids_, ids)
        a = loaded.recommend(X[:4], N=3)
        b = model.recommend(X[:4], N=3)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(lae_fast.ModelFileError, match="not a EASE"):
        EASE.load(path)


def test_load_rejects_invalid_stored_hyper_parameters(X, tmp_path):
    from lae_fast import io as model_io

    model = L3AE(1.0, 2.0, 0.5).fit(X, random_E(N_ITEMS, 4))
    meta = {"model": "l3ae", "params": dict(l2_x=-3.0, l2_e=2.0, l2_f=0.5, dtype="float32", num_threads=None),
            "dtype": "float32", "n_items": N_ITEMS, "lae_fast_version": lae_fast.__version__}
    path = tmp_path / "bad.laefast"
    model_io.save_arrays(path, {"B": model.B_, "item_ids": model.item_ids_}, meta)
    with pytest.raises(lae_fast.ModelFileError, match=r"l2_x \+ l2_e must be > 0"):
        lae_fast.load_model(path)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "strided"])
def test_add_low_rank_inplace(dtype, layout):
    from lae_fast.models._closed_form import add_low_rank_inplace

    rng = np.random.default_rng(0)
    n, d = 1100, 3  # more rows than one fallback chunk
    A0 = rng.normal(size=(n, 2 * n) if layout == "strided" else (n, n)).astype(dtype)
    A = A0[:, ::2] if layout == "strided" else A0
    before = A.astype(np.float64)
    U, V = rng.normal(size=(n, d)), rng.normal(size=(d, n))
    out = add_low_rank_inplace(A, U, V, 2.5)
    assert out is A
    assert relerr(A, before + 2.5 * U @ V) < (1e-6 if dtype == np.float32 else 1e-14)
