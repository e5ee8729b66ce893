"""resolve_num_threads precedence and the BLAS limits."""
import numpy as np
import pytest

import lae_fast
import lae_fast._threads as threads
from lae_fast import resolve_num_threads

CPUS = 4


@pytest.fixture
def env(monkeypatch):
    """A clean environment on a pretend 4-CPU machine."""
    monkeypatch.delenv("LAE_FAST_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cpus", lambda: CPUS)
    return monkeypatch


def test_default_is_available_cpus(env):
    assert resolve_num_threads() == CPUS
    assert resolve_num_threads(None) == CPUS


def test_real_available_cpus_is_sane(monkeypatch):
    import os

    n = threads.available_cpus()
    assert isinstance(n, int) and 1 <= n <= (os.cpu_count() or 1)


def test_precedence(env):
    env.setenv("OMP_NUM_THREADS", "3")
    assert resolve_num_threads() == 3
    env.setenv("LAE_FAST_NUM_THREADS", "5")
    assert resolve_num_threads() == 5          # ours beats OMP_NUM_THREADS
    assert resolve_num_threads(7) == 7         # the argument beats both
    assert resolve_num_threads(np.int64(2)) == 2
    env.delenv("LAE_FAST_NUM_THREADS")
    assert resolve_num_threads() == 3
    env.setenv("LAE_FAST_NUM_THREADS", "  ")   # blank: ignored, falls through
    assert resolve_num_threads() == 3


def test_explicit_count_above_cpus_is_honoured(env):
    assert resolve_num_threads(16) == 16


@pytest.mark.parametrize("value, expected", [(-1, CPUS), (-2, CPUS - 1), (-4, 1), (-100, 1)])
def test_negative_counts_back(env, value, expected):
    assert resolve_num_threads(value) == expected
    env.setenv("LAE_FAST_NUM_THREADS", str(value))
    assert resolve_num_threads() == expected


def test_zero_is_rejected(env):
    with pytest.raises(ValueError, match="num_threads=0"):
        resolve_num_threads(0)
    env.setenv("LAE_FAST_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="LAE_FAST_NUM_THREADS=0"):
        resolve_num_threads()
    env.delenv("LAE_FAST_NUM_THREADS")
    env.setenv("OMP_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS=0"):
        resolve_num_threads()


@pytest.mark.parametrize("var", ["LAE_FAST_NUM_THREADS", "OMP_NUM_THREADS"])
@pytest.mark.parametrize("value", ["four", "2.5", "1e3"])
def test_bad_env_var_names_the_variable(env, var, value):
    env.setenv(var, value)
    with pytest.raises(ValueError, match=var):
        resolve_num_threads()
    assert resolve_num_threads(2) == 2  # an explicit argument never reads the environment


def test_omp_num_threads_nested_list_uses_first_level(env):
    # "4,1" is a valid OpenMP setting (threads per nesting level): the outer level counts
    env.setenv("OMP_NUM_THREADS", "3,1")
    assert resolve_num_threads() == 3


@pytest.mark.parametrize("value", [2.0, "2", True])
def test_non_integer_argument(env, value):
    with pytest.raises(TypeError, match="num_threads"):
        resolve_num_threads(value)


def test_env_var_reaches_the_models(env, X_small):
    env.setenv("LAE_FAST_NUM_THREADS", "0")
    with pytest.raises(ValueError, match="LAE_FAST_NUM_THREADS"):
        lae_fast.EASE(2.0).fit(X_small)
    model = lae_fast.EASE(2.0, num_threads=1).fit(X_small)  # the argument wins
    with pytest.raises(ValueError, match="LAE_FAST_NUM_THREADS"):
        lae_fast.topk(X_small, model.B_, 3)


def test_blas_limits_apply_inside_and_are_restored():
    from threadpoolctl import threadpool_info

    def blas_threads_now():
        return {(i["internal_api"], i["filepath"]): i["num_threads"]
                for i in threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads_now()
    if not before:
        pytest.skip("no BLAS library visible to threadpoolctl")
    with threads.blas_threads(1):
        assert set(blas_threads_now().values()) == {1}
    assert blas_threads_now() == before
    with threads.sequential_blas():
        inside = blas_threads_now()
        assert all(v >= 1 for v in inside.values())
    assert blas_threads_now() == before


# ---------------------------------------------------------------------------------------------
# bounded counts: a typo must be an error, never a crash in the OpenMP runtime
# ---------------------------------------------------------------------------------------------
def test_counts_above_the_maximum_are_refused(env):
    assert threads.max_num_threads() == threads.MAX_THREADS == 1024
    assert resolve_num_threads(1024) == 1024                   # oversubscription is still honoured
    for value in (1025, 50_000, 100_000, 10 ** 30, np.int64(2 ** 62)):
        with pytest.raises(ValueError, match=r"num_threads=\d+ is more threads than lae-fast starts \(at most 1024"):
            resolve_num_threads(value)
    for var in ("LAE_FAST_NUM_THREADS", "OMP_NUM_THREADS"):
        env.setenv(var, "100000")
        with pytest.raises(ValueError, match=f"{var}=100000 is more threads"):
            resolve_num_threads()
        env.delenv(var)


def test_the_maximum_grows_with_a_bigger_machine(env):
    env.setattr(threads, "available_cpus", lambda: 2048)
    assert resolve_num_threads(2048) == 2048 and resolve_num_threads(-1) == 2048
    with pytest.raises(ValueError, match="at most 2048"):
        resolve_num_threads(2049)


def test_every_kernel_refuses_an_absurd_count_before_starting_threads(X_small):
    from lae_fast import Recommender
    from lae_fast.linalg import mirror_upper, spd_inverse_inplace
    from lae_fast.serving import prune

    model = lae_fast.EASE(2.0, num_threads=1).fit(X_small)
    rec = Recommender(model)
    A = np.eye(600, dtype=np.float32) * 2  # above the size where the inverse goes parallel
    calls = {
        "gram": lambda: lae_fast.gram(X_small, num_threads=100_000),
        "fit": lambda: lae_fast.EASE(2.0, num_threads=100_000).fit(X_small),
        "topk": lambda: lae_fast.topk(X_small, model.B_, 3, num_threads=100_000),
        "recommend": lambda: model.recommend(X_small, 3, num_threads=50_000),
        "recommend_batch": lambda: rec.recommend_batch([[1], [2]], 3, num_threads=100_000),
        "pruned batch": lambda: rec.prune(3).recommend_batch([[1], [2]], 3, num_threads=100_000),
        "prune": lambda: prune(model.B_, 3, num_threads=100_000),
        "spd_inverse": lambda: spd_inverse_inplace(A.copy(), num_threads=100_000),
        "mirror_upper": lambda: mirror_upper(A.copy(), num_threads=100_000),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="more threads than lae-fast starts"):
            call()
