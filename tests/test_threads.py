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
