"""The EASE family (docs/MODELS.md §1) against an independent brute-force solve, plus the estimator contract."""
import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
from lae_fast import (DLAE, EASE, EDLAE, LAE, RDLAE, RLAE, LinearAutoencoder, NotFittedError)
from lae_fast.models import get_model_class, model_names


# ---------------------------------------------------------------------------------------------
# references
# ---------------------------------------------------------------------------------------------
def brute_force_B(X, l2, dropout, xi):
    """Column-by-column constrained ridge solve in float64, independent of the closed form.

    Column j minimises ||X e_j - X b||² + Σ_i γ_i b_i²  subject to b_j <= ξ, with
    γ_i = λ + p/(1-p)·G_ii.  The unconstrained minimiser solves (G + Λ) b = G e_j; when
    its b_j exceeds ξ the constraint is active, and b_j = ξ is imposed through the KKT
    system [[2(G+Λ), e_j], [e_jᵀ, 0]] [b; μ] = [2 G e_j; ξ].
    """
    Xd = (X.toarray() != 0).astype(np.float64)
    G = Xd.T @ Xd
    n = G.shape[0]
    gamma = l2 + dropout / (1.0 - dropout) * np.diag(G)
    A = G + np.diag(gamma)
    B = np.empty((n, n))
    for j in range(n):
        b = np.linalg.solve(A, G[:, j])
        if b[j] > xi:
            K = np.zeros((n + 1, n + 1))
            K[:n, :n] = 2.0 * A
            K[j, n] = K[n, j] = 1.0
            rhs = np.concatenate([2.0 * G[:, j], [xi]])
            b = np.linalg.solve(K, rhs)[:n]
            assert abs(b[j] - xi) < 1e-12
        B[:, j] = b
    return B


def closed_form_B(X, l2, dropout, xi):
    """docs/MODELS.md §1 with numpy's float64 inverse."""
    Xd = (X.toarray() != 0).astype(np.float64)
    G = Xd.T @ Xd
    gamma = l2 + dropout / (1.0 - dropout) * np.diag(G)
    P = np.linalg.inv(G + np.diag(gamma))
    scale = np.maximum(gamma, (1.0 - xi) / np.diag(P))
    return np.eye(G.shape[0]) - P * scale[None, :]


def relerr(a, ref):
    return np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max()


# (constructor, kwargs, effective (l2, dropout, xi))
CASES = [
    ("LAE", LAE, dict(l2=3.0), (3.0, 0.0, 1.0)),
    ("EASE", EASE, dict(l2=3.0), (3.0, 0.0, 0.0)),
    ("EASE-big-l2", EASE, dict(l2=40.0), (40.0, 0.0, 0.0)),
    ("DLAE", DLAE, dict(l2=2.0, dropout=0.3), (2.0, 0.3, 1.0)),
    ("EDLAE", EDLAE, dict(l2=2.0, dropout=0.3), (2.0, 0.3, 0.0)),
    ("RLAE", RLAE, dict(l2=3.0, xi=0.78), (3.0, 0.0, 0.78)),
    ("RLAE-l2-1", RLAE, dict(l2=1.0, xi=0.9), (1.0, 0.0, 0.9)),
    ("RDLAE", RDLAE, dict(l2=2.0, dropout=0.2, xi=0.6), (2.0, 0.2, 0.6)),
    ("RDLAE-high-p", RDLAE, dict(l2=0.5, dropout=0.7, xi=0.235), (0.5, 0.7, 0.235)),
    ("LinAE-ease", LinearAutoencoder, dict(l2=3.0), (3.0, 0.0, 0.0)),
    ("LinAE-mixed", LinearAutoencoder, dict(l2=1.5, dropout=0.4, xi=0.455), (1.5, 0.4, 0.455)),
    ("LinAE-free", LinearAutoencoder, dict(l2=1.5, dropout=0.1, xi=2.5), (1.5, 0.1, 2.5)),
]
CASE_IDS = [c[0] for c in CASES]


@pytest.fixture(params=["full", "empty-item"])
def X(request, X_full, X_small):
    return X_full if request.param == "full" else X_small


@pytest.mark.parametrize("name, cls, kwargs, eff", CASES, ids=CASE_IDS)
def test_float64_matches_brute_force(X, name, cls, kwargs, eff):
    model = cls(**kwargs, dtype=np.float64).fit(X)
    ref = brute_force_B(X, *eff)
    assert model.B_.dtype == np.float64
    assert model.B_.shape == (12, 12)
    assert relerr(model.B_, ref) < 1e-8


@pytest.mark.parametrize("name, cls, kwargs, eff", CASES, ids=CASE_IDS)
def test_float32_matches_closed_form(X, name, cls, kwargs, eff):
    model = cls(**kwargs).fit(X)
    assert model.B_.dtype == np.float32
    ref = closed_form_B(X, *eff)
    assert relerr(model.B_, ref) < 1e-4
    # the brute force agrees with the closed form (keeps the reference honest)
    assert relerr(brute_force_B(X, *eff), ref) < 1e-9


@pytest.mark.parametrize("l2, p, xi", [c[3] for c in CASES if 0 < c[3][2] < 1],
                         ids=[c[0] for c in CASES if 0 < c[3][2] < 1])
def test_relaxed_cases_really_mix_active_and_inactive_constraints(X, l2, p, xi):
    """RLAE/RDLAE tests above are only meaningful if some diagonals hit ξ and some do not."""
    free = np.diag(closed_form_B(X, l2, p, 5.0))
    assert (free > xi + 0.01).any() and (free < xi - 0.01).any(), (l2, p, xi, free)


def test_empty_item_column_and_row_are_zero(X_small):
    for name in model_names(base=LinearAutoencoder):
        cls = get_model_class(name)
        B = cls(l2=2.0, dtype=np.float64).fit(X_small).B_
        off = np.arange(12) != 5
        assert np.all(B[off, 5] == 0) and np.all(B[5, off] == 0), cls.__name__
        assert abs(B[5, 5]) < 1e-12  # 1 - λ·fl(1/λ): zero up to rounding
        assert np.all(np.isfinite(B))


# ---------------------------------------------------------------------------------------------
# identities
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_identities(X_small, dtype):
    kw = dict(dtype=dtype)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    ease = EASE(4.0, **kw).fit(X_small).B_
    lae = LAE(4.0, **kw).fit(X_small).B_
    edlae = EDLAE(4.0, dropout=0.25, **kw).fit(X_small).B_
    dlae = DLAE(4.0, dropout=0.25, **kw).fit(X_small).B_
    assert relerr(RLAE(4.0, xi=0.0, **kw).fit(X_small).B_, ease) <= tol
    assert relerr(RLAE(4.0, xi=1.0, **kw).fit(X_small).B_, lae) <= tol
    assert relerr(RDLAE(4.0, dropout=0.25, xi=0.0, **kw).fit(X_small).B_, edlae) <= tol
    assert relerr(RDLAE(4.0, dropout=0.25, xi=1.0, **kw).fit(X_small).B_, dlae) <= tol
    # and the presets really are different models
    assert relerr(lae, ease) > 1e-2 and relerr(dlae, edlae) > 1e-2 and relerr(dlae, lae) > 1e-2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xi", [0.0, 0.05, 0.2, 0.5, 0.9])
def test_diagonal_bounded_by_xi(X_full, xi, dtype):
    for model in (RLAE(1.0, xi=xi, dtype=dtype), RDLAE(1.0, dropout=0.3, xi=xi, dtype=dtype)):
        d = np.diag(model.fit(X_full).B_)
        assert d.max() <= xi + 1e-6
        # where the bound is active the diagonal sits exactly on it
        free = np.diag(closed_form_B(X_full, model.l2, model.dropout, 5.0))
        active = free > xi + 1e-3
        assert active.any() or xi >= free.max() - 1e-3
        np.testing.assert_array_equal(d[active], np.asarray(xi, dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_diagonal_models_have_exactly_zero_diagonal(X_small, dtype):
    for model in (EASE(3.0, dtype=dtype), EDLAE(3.0, dropout=0.4, dtype=dtype),
                  RLAE(3.0, xi=0.0, dtype=dtype)):
        assert np.all(np.diag(model.fit(X_small).B_) == 0), type(model).__name__


def test_lae_is_identity_minus_l2_P_and_P_G(X_full):
    l2 = 2.5
    Xd = X_full.toarray().astype(np.float64)
    G = Xd.T @ Xd
    P = np.linalg.inv(G + l2 * np.eye(12))
    B = LAE(l2, dtype=np.float64).fit(X_full).B_
    assert relerr(B, np.eye(12) - l2 * P) < 1e-10
    assert relerr(B, P @ G) < 1e-10


def test_ease_is_minus_P_over_diag_P(X_full):
    Xd = X_full.toarray().astype(np.float64)
    P = np.linalg.inv(Xd.T @ Xd + 7.0 * np.eye(12))
    ref = -P / np.diag(P)[None, :]
    np.fill_diagonal(ref, 0.0)
    assert relerr(EASE(7.0, dtype=np.float64).fit(X_full).B_, ref) < 1e-10


def test_values_other_than_one_count_as_one(X_full):
    X2 = X_full.copy()
    X2.data = np.random.default_rng(0).integers(1, 6, X2.nnz).astype(np.float64)
    np.testing.assert_array_equal(EASE(3.0).fit(X2).B_, EASE(3.0).fit(X_full).B_)


def test_dense_input_equals_sparse(X_small):
    a = RDLAE(2.0, dropout=0.2, xi=0.3).fit(X_small).B_
    b = RDLAE(2.0, dropout=0.2, xi=0.3).fit(X_small.toarray()).B_
    c = RDLAE(2.0, dropout=0.2, xi=0.3).fit(X_small.tocoo()).B_
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_threads_do_not_change_B(make_power_law):
    X = make_power_law(400, 90, seed=3)
    a = EDLAE(5.0, dropout=0.3, num_threads=1).fit(X).B_
    b = EDLAE(5.0, dropout=0.3, num_threads=2).fit(X).B_
    assert relerr(a, b) < 1e-5


# ---------------------------------------------------------------------------------------------
# scores are x_u · B, never x_u · Bᵀ
# ---------------------------------------------------------------------------------------------
def test_recommend_ranks_with_rows_of_B_not_columns(make_power_law):
    X = make_power_law(200, 30, mean_len=5, alpha=1.3, seed=4)
    model = EASE(2.0, dtype=np.float64).fit(X)
    B = model.B_
    assert relerr(B, B.T) > 0.1  # popularity skew makes B clearly non-symmetric
    Xd = X.toarray() > 0
    ids, scores = model.recommend(X, N=1)
    n_differ = 0
    for u in range(X.shape[0]):
        if not Xd[u].any() or Xd[u].all():
            continue
        right = np.where(Xd[u], -np.inf, Xd[u] @ B)
        wrong = np.where(Xd[u], -np.inf, Xd[u] @ B.T)
        assert ids[u, 0] == np.argmax(right)
        np.testing.assert_allclose(scores[u, 0], right.max(), rtol=1e-6, atol=1e-6)
        if np.argmax(wrong) != np.argmax(right):
            n_differ += 1
    assert n_differ >= 10  # the test would fail for a transposed implementation


def test_topk_handmade_upper_triangular_B():
    """B[i, j] = 1 for j > i: item 0 predicts everything, the last item predicts nothing."""
    n = 6
    B = np.triu(np.ones((n, n), dtype=np.float32), k=1) * np.arange(1, n + 1, dtype=np.float32)
    x = sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0]], dtype=np.float32))
    ids, scores = lae_fast.topk(x, B, N=2)
    assert ids.tolist() == [[5, 4]]          # row 0 of B: scores 2, 3, 4, 5, 6 for items 1..5
    assert scores.tolist() == [[6.0, 5.0]]
    x = sp.csr_matrix(np.array([[0, 0, 0, 0, 0, 1]], dtype=np.float32))
    ids, scores = lae_fast.topk(x, B, N=2)   # row 5 of B is all zero; Bᵀ would give item 0 score 6
    assert scores.tolist() == [[0.0, 0.0]] and ids.tolist() == [[0, 1]]


# ---------------------------------------------------------------------------------------------
# estimator contract
# ---------------------------------------------------------------------------------------------
def test_fit_returns_self_and_sets_state(X_small):
    model = RDLAE(2.0, dropout=0.2, xi=0.4)
    assert model.fit(X_small) is model
    assert model.B is model.B_
    assert model.n_items == 12
    np.testing.assert_array_equal(model.item_ids_, np.arange(12))
    np.testing.assert_array_equal(model.item_counts_, np.asarray(X_small.sum(axis=0)).ravel())
    assert set(model.fit_seconds_) == {"gram", "inverse", "scaling"}


@pytest.mark.parametrize("cls, kwargs, expected", [
    (LAE, dict(l2=3.0), {"l2": 3.0, "dtype": np.float32, "num_threads": None, "neighbors": None}),
    (EASE, dict(l2=7, num_threads=2), {"l2": 7, "dtype": np.float32, "num_threads": 2, "neighbors": None}),
    (DLAE, dict(), {"l2": 400.0, "dropout": 0.3, "dtype": np.float32, "num_threads": None, "neighbors": None}),
    (EDLAE, dict(dropout=0.1), {"l2": 400.0, "dropout": 0.1, "dtype": np.float32, "num_threads": None, "neighbors": None}),
    (RLAE, dict(xi=0.2, dtype=np.float64), {"l2": 1000.0, "xi": 0.2, "dtype": np.float64, "num_threads": None, "neighbors": None}),
    (RDLAE, dict(), {"l2": 1000.0, "dropout": 0.2, "xi": 0.6, "dtype": np.float32, "num_threads": None, "neighbors": None}),
    (LinearAutoencoder, dict(l2=1.0, xi=0.5),
     {"l2": 1.0, "dropout": 0.0, "xi": 0.5, "dtype": np.float32, "num_threads": None, "neighbors": None}),
])
def test_get_params(cls, kwargs, expected):
    model = cls(**kwargs)
    assert model.get_params() == expected
    assert repr(model).startswith(cls.__name__ + "(")
    # round trip through the constructor (clone)
    assert cls(**model.get_params()).get_params() == expected


def test_not_fitted(X_small, tmp_path):
    model = EASE(3.0)
    for call in (lambda: model.B, lambda: model.n_items, lambda: model.recommend(X_small),
                 lambda: model.similar_items(0), lambda: model.save(tmp_path / "m.laef")):
        with pytest.raises(NotFittedError, match="fit") as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    assert not hasattr(model, "B")  # AttributeError semantics
    assert not (tmp_path / "m.laef").exists()


@pytest.mark.parametrize("cls, kwargs, exc, name", [
    (EASE, dict(l2=-1.0), ValueError, "l2"),
    (EASE, dict(l2=float("nan")), ValueError, "l2"),
    (EASE, dict(l2=float("inf")), ValueError, "l2"),
    (EASE, dict(l2="500"), TypeError, "l2"),
    (EASE, dict(l2=None), TypeError, "l2"),
    (EASE, dict(l2=True), TypeError, "l2"),
    (DLAE, dict(dropout=1.0), ValueError, "dropout"),
    (DLAE, dict(dropout=-0.1), ValueError, "dropout"),
    (EDLAE, dict(dropout=float("nan")), ValueError, "dropout"),
    (RDLAE, dict(dropout="0.2"), TypeError, "dropout"),
    (RLAE, dict(xi=-0.5), ValueError, "xi"),
    (RLAE, dict(xi=float("nan")), ValueError, "xi"),
    (RLAE, dict(xi=[0.5]), TypeError, "xi"),
    (EASE, dict(dtype=np.int32), ValueError, "dtype"),
    (EASE, dict(dtype=np.float16), ValueError, "dtype"),
    (EASE, dict(dtype="not-a-dtype"), TypeError, "dtype"),
    (EASE, dict(num_threads=0), ValueError, "num_threads"),
    (EASE, dict(num_threads="2"), TypeError, "num_threads"),
])
def test_bad_hyper_parameters(X_small, cls, kwargs, exc, name):
    model = cls(**kwargs)  # __init__ only stores
    with pytest.raises(exc, match=name):
        model.fit(X_small)
    assert getattr(model, "B_", None) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_not_positive_definite_raises_linalg_error(X_small, dtype):
    # item 5 has no users: with l2 = 0 (and no dropout mass) G + Λ has a zero pivot
    with pytest.raises(np.linalg.LinAlgError, match="l2"):
        EASE(0.0, dtype=dtype).fit(X_small)
    with pytest.raises(np.linalg.LinAlgError, match="l2"):
        EDLAE(0.0, dropout=0.5, dtype=dtype).fit(X_small)


def test_duplicated_column_without_l2_raises():
    # items 0 and 1 are used by exactly the same 4 users: the leading 2x2 minor of G is [[4, 4], [4, 4]]
    rng = np.random.default_rng(5)
    dense = (rng.random((30, 6)) < 0.4).astype(np.float32)
    dense[:, 0] = 0
    dense[[1, 4, 9, 20], 0] = 1
    dense[:, 1] = dense[:, 0]
    with pytest.raises(np.linalg.LinAlgError, match="l2") as info:
        LAE(0.0, dtype=np.float64).fit(sp.csr_matrix(dense))
    assert "order 2" in str(info.value)
    # a little l2 fixes it
    assert np.isfinite(LAE(0.1, dtype=np.float64).fit(sp.csr_matrix(dense)).B_).all()


def test_zero_l2_is_fine_when_G_is_positive_definite():
    X = sp.csr_matrix(np.eye(4, dtype=np.float32))
    B = EASE(0.0, dtype=np.float64).fit(X).B_
    np.testing.assert_array_equal(B, np.zeros((4, 4)))
    B = LAE(0.0, dtype=np.float64).fit(X).B_  # no regularisation at all: the identity
    np.testing.assert_allclose(B, np.eye(4), atol=1e-15)


@pytest.mark.parametrize("bad, exc, match", [
    (lambda X: _with_data(X, np.nan), ValueError, "NaN"),
    (lambda X: _with_data(X, np.inf), ValueError, "infinite"),
    (lambda X: _with_data(X, -1.0), ValueError, "negative"),
    (lambda X: X.toarray()[0], ValueError, "2-D"),
    (lambda X: X.toarray()[None], ValueError, "2-D"),
    (lambda X: X.toarray().astype(object), TypeError, "dtype object"),
    (lambda X: [["a", "b"], ["c", "d"]], TypeError, "X must"),
    (lambda X: np.zeros((5, 0)), ValueError, "no items"),
    (lambda X: sp.csr_matrix(X.toarray().astype(np.complex128)), TypeError, "real"),
])
def test_bad_input(X_small, bad, exc, match):
    with pytest.raises(exc, match=match):
        EASE(3.0).fit(bad(X_small))


def _with_data(X, value):
    X = X.copy().astype(np.float64)
    X.data[3] = value
    return X


def test_interactions_like_object_sets_item_ids(X_small, interactions_like):
    ids = np.array([f"item-{c}" for c in "abcdefghijkl"])
    model = EASE(3.0).fit(interactions_like(X_small, ids))
    np.testing.assert_array_equal(model.item_ids_, ids)
    np.testing.assert_array_equal(model.B_, EASE(3.0).fit(X_small).B_)
    top, _ = model.recommend(X_small[:4], N=3)
    assert model.item_ids_[top].shape == (4, 3)


def test_interactions_like_with_wrong_number_of_ids(X_small, interactions_like):
    with pytest.raises(ValueError, match="item_ids"):
        EASE(3.0).fit(interactions_like(X_small, np.arange(11)))


def test_numpy_scalar_hyper_parameters_fit_and_save(X_small, tmp_path):
    model = RDLAE(np.int64(3), dropout=np.float32(0.25), xi=np.float64(0.4),
                  num_threads=np.int64(1)).fit(X_small)
    model.save(tmp_path / "m.laef")
    loaded = RDLAE.load(tmp_path / "m.laef")
    np.testing.assert_array_equal(loaded.B_, model.B_)
    assert loaded.get_params()["l2"] == 3 and loaded.get_params()["num_threads"] == 1


def test_memory_preflight_refuses_before_allocating(X_small, monkeypatch):
    monkeypatch.delenv("LAE_FAST_SKIP_MEMORY_CHECK", raising=False)
    monkeypatch.setattr(lae_fast._memory, "available_memory", lambda: 100)
    with pytest.raises(MemoryError, match="12x12"):
        EASE(3.0).fit(X_small)
    monkeypatch.setenv("LAE_FAST_SKIP_MEMORY_CHECK", "1")
    assert EASE(3.0).fit(X_small).B_.shape == (12, 12)
