"""The estimator contract (lae_fast.models.base), checked for EVERY registered model.

In the spirit of scikit-learn's estimator checks and implicit's recommender test mixin: a class
added to the catalogue (lae_fast.models.registry) is tested here without editing any list.
Each check compares against an independent computation (numpy scores x·B, a brute-force top-N),
so it can fail.
"""
import inspect

import numpy as np
import pytest
import scipy.sparse as sp

import lae_fast
from lae_fast import NotFittedError
from lae_fast.data import Interactions
from lae_fast.io import ModelFileError
from lae_fast.models import MODEL_REGISTRY, ItemItemModel, build_model, get_model_class, model_names
from lae_fast.models.registry import hyperparameter_help, register

N_USERS, N_ITEMS, DIM = 60, 14, 5
NAMES = list(MODEL_REGISTRY)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    X = sp.random(N_USERS, N_ITEMS, density=0.35, format="csr", random_state=rng, dtype=np.float64)
    X.data[:] = 1.0
    E = rng.normal(size=(N_ITEMS, DIM))
    ids = np.array([f"item-{j}" for j in range(N_ITEMS)])
    return Interactions.from_matrix(X, item_ids=ids), E


def make(name, **options):
    """The model with hyper-parameters that suit a 14-item problem (small ridges: a B far from zero)."""
    cls = get_model_class(name)
    small = {"l2": 2.0, "l2_x": 1.0, "l2_e": 2.0, "l2_f": 0.5}
    params = {k: small[k] for k in cls.hyperparameters if k in small}
    return cls(**params, **options)


def fit(model, data):
    inter, E = data
    return model.fit(inter, E if model.takes_embeddings else None)


def ref_topk(X, B, N, exclude_own=True):
    """Brute force: scores x·B in float64, own items removed, score desc then index asc, padded."""
    S = np.asarray(X @ np.asarray(B, dtype=np.float64))
    ids = np.full((X.shape[0], N), -1, dtype=np.int64)
    for u in range(X.shape[0]):
        own = set(X[u].indices) if exclude_own else set()
        cand = [j for j in range(X.shape[1]) if j not in own]
        cand.sort(key=lambda j: (-S[u, j], j))
        ids[u, :min(N, len(cand))] = cand[:N]
    return ids, S


# -- the catalogue itself -------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_declaration_matches_init(name):
    cls = MODEL_REGISTRY[name]
    assert cls.name == name and cls.summary
    taken = inspect.signature(cls.__init__).parameters
    for param in cls.hyperparameters + cls.options:
        assert param in taken
    for param in cls.hyperparameters:
        assert param in hyperparameter_help()
    assert set(cls().get_params()) == set(cls.hyperparameters + cls.options)


def test_registry_refuses_bad_declarations():
    class NoName(ItemItemModel):
        summary = "x"

    with pytest.raises(TypeError, match="name"):
        register(NoName)

    class Undeclared(ItemItemModel):
        name = "contract-test-undeclared"
        summary = "x"
        hyperparameters = ("alpha",)
        param_help = {"alpha": "a"}

        def __init__(self, *, dtype=np.float32, num_threads=None):
            self.dtype, self.num_threads = dtype, num_threads

    with pytest.raises(TypeError, match="'alpha' but its __init__ does not take it"):
        register(Undeclared)

    class Clash(ItemItemModel):
        name = "ease"
        summary = "x"

    with pytest.raises(TypeError, match="already used by EASE"):
        register(Clash)
    assert "contract-test-undeclared" not in MODEL_REGISTRY and MODEL_REGISTRY["ease"] is lae_fast.EASE


def test_build_model_refuses_foreign_hyper_parameters():
    assert isinstance(build_model("rdlae", {"l2": 3.0, "xi": None}), lae_fast.RDLAE)
    with pytest.raises(ValueError, match="has no hyper-parameter 'xi'; models with it: family, rlae, rdlae"):
        build_model("ease", {"xi": 0.2})
    with pytest.raises(ValueError, match="unknown model 'nope'; known models: family, lae, ease"):
        get_model_class("nope")


def test_filters_of_the_catalogue():
    assert set(model_names(takes_embeddings=True)) == {n for n, c in MODEL_REGISTRY.items() if c.takes_embeddings}
    assert set(model_names(from_gram=True)) == {n for n, c in MODEL_REGISTRY.items()
                                                if getattr(c, "_solve_gram", None) is not None}
    family = model_names(base=lae_fast.LinearAutoencoder)
    assert family[0] == "family" and {"ease", "rdlae"} <= set(family)


# -- the contract, model by model -----------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_not_fitted_before_fit(name):
    model = make(name)
    for call in (lambda: model.B, lambda: model.recommend(np.zeros(N_ITEMS)), lambda: model.save("x.lae")):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            call()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_returns_self_and_sets_learned_state(data, name, dtype):
    inter, _ = data
    model = make(name, dtype=dtype)
    assert fit(model, data) is model
    B = model.B
    assert B.shape == (N_ITEMS, N_ITEMS) and B.dtype == dtype and np.isfinite(B).all()
    assert np.abs(B).max() > 0
    np.testing.assert_array_equal(model.item_ids_, inter.item_ids)
    assert model.n_users_ == N_USERS and model.nnz_ == inter.nnz and model.n_items == N_ITEMS
    assert isinstance(model.fit_seconds_, dict) and all(v >= 0 for v in model.fit_seconds_.values())
    assert model.get_params()["dtype"] is dtype  # __init__ stored, not converted


@pytest.mark.parametrize("name", NAMES)
def test_recommend_is_brute_force_top_n_of_x_times_B(data, name):
    inter, _ = data
    model = fit(make(name, dtype=np.float64), data)
    X = inter.matrix
    N = N_ITEMS  # more than any user's candidates: padding must appear
    ids, scores = model.recommend(X, N)
    ref_ids, S = ref_topk(X, model.B, N)
    assert ids.dtype == np.int32 and scores.dtype == np.float32 and ids.shape == (N_USERS, N)
    for u in range(N_USERS):
        k = int((ref_ids[u] >= 0).sum())
        np.testing.assert_allclose(scores[u, :k], S[u, ids[u, :k]], rtol=1e-5, atol=1e-6)
        assert not set(ids[u, :k]) & set(X[u].indices)             # own items never come back
        assert (ids[u, k:] == -1).all() and np.isneginf(scores[u, k:]).all()
        # same scores as brute force (ties may be ordered either way only if equal to rounding)
        np.testing.assert_allclose(np.sort(S[u, ids[u, :k]]), np.sort(S[u, ref_ids[u, :k]]), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_single_user_and_similar_items(data, name):
    inter, _ = data
    model = fit(make(name), data)
    x = inter.matrix[3].toarray().ravel()
    ids1, sc1 = model.recommend(x, 4)
    ids2, sc2 = model.recommend(inter.matrix[3:4], 4)
    assert ids1.ndim == 1 and np.array_equal(ids1, ids2[0]) and np.array_equal(sc1, sc2[0])
    sim_ids, sim_scores = model.similar_items(2, N=5)
    onehot = np.zeros(N_ITEMS)
    onehot[2] = 1
    rec_ids, rec_scores = model.recommend(onehot, 5)
    assert np.array_equal(sim_ids, rec_ids) and 2 not in sim_ids
    np.testing.assert_allclose(sim_scores[sim_ids >= 0], np.asarray(model.B[2], dtype=np.float64)[sim_ids[sim_ids >= 0]],
                               rtol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(data, name, tmp_path):
    model = fit(make(name, dtype=np.float64), data)
    path = tmp_path / f"{name}.lae"
    model.save(path)
    for loaded in (lae_fast.load_model(path), type(model).load(path), ItemItemModel.load(path)):
        assert type(loaded) is type(model) and loaded.get_params() == {**model.get_params(), "dtype": np.float64}
        np.testing.assert_array_equal(np.asarray(loaded.B), model.B)
        np.testing.assert_array_equal(loaded.item_ids_, model.item_ids_)
        assert loaded.n_users_ == model.n_users_ and loaded.nnz_ == model.nnz_
    assert lae_fast.Recommender.load(path).n_items == N_ITEMS
    other = next(c for c in MODEL_REGISTRY.values() if not issubclass(type(model), c) and c is not ItemItemModel)
    with pytest.raises(ModelFileError, match=f"holds a {type(model).__name__}, not a {other.__name__}"):
        other.load(path)


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_refused_clearly(data, name):
    inter, E = data
    model = make(name)
    bad = inter.matrix.copy().astype(np.float64)
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad, E if model.takes_embeddings else None)
    if model.takes_embeddings:
        with pytest.raises(ValueError, match="rows but X has"):
            model.fit(inter, E[:-1])
        with pytest.raises(TypeError, match="required"):
            model.fit(inter)
    else:
        with pytest.raises(TypeError, match="does not use item embeddings"):
            model.fit(inter, E)
    with pytest.raises((TypeError, ValueError), match="dtype"):
        make(name, dtype=np.int32).fit(inter, E if model.takes_embeddings else None)


@pytest.mark.parametrize("name", model_names(from_gram=True))
def test_fit_gram_equals_fit(data, name):
    inter, E = data
    ref = fit(make(name, dtype=np.float64), data)
    G = lae_fast.gram(inter.matrix, dtype=np.float64)
    model = make(name, dtype=np.float64).fit_gram(G, item_ids=inter.item_ids, n_users=N_USERS, nnz=inter.nnz,
                                                  gram_seconds=1.5,
                                                  item_embeddings=E if ref.takes_embeddings else None)
    np.testing.assert_array_equal(model.B, ref.B)
    assert model.fit_seconds_["gram"] == 1.5 and model.n_users_ == N_USERS


def test_set_params_and_repr():
    model = lae_fast.RDLAE().set_params(l2=7.0, xi=0.1)
    assert model.l2 == 7.0 and "RDLAE(l2=7.0" in repr(model)
    with pytest.raises(ValueError, match="has no parameter 'alpha'"):
        model.set_params(alpha=1)
