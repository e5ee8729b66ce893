"""Every SPD-inverse route agrees with float64 LAPACK, refuses non-SPD input, reads only the upper
triangle; the solver/fit benchmarks and ``lae-fast bench`` run on tiny inputs."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from lae_fast import _spdinv
from lae_fast.linalg import SPD_METHODS, choose_spd_method, spd_inverse_inplace

METHODS = SPD_METHODS  # auto, lapack, blocked
DTYPES = [np.float32, np.float64]
SIZES = [1, 2, 3, 17, 64, 200, 513]
#: one BLAS thread by default: on a busy shared machine multi-threaded BLAS calls on small
#: blocks mostly wait for each other; two threads are exercised where it matters
NT = 1


@pytest.fixture(autouse=True)
def _blas_on_one_thread():
    """Direct kernel calls and numpy's own BLAS (references) on NT threads too."""
    from lae_fast._threads import blas_threads

    with blas_threads(NT):
        yield


def random_spd(n, cond=None, seed=0):
    """Random SPD matrix; with ``cond`` its eigenvalues are log-spaced over that condition number."""
    rng = np.random.default_rng(seed)
    if cond is None:
        A = rng.standard_normal((n + 5, n))
        return A.T @ A / n + 0.5 * np.eye(n)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.logspace(0, -np.log10(cond), n)) @ Q.T


def gram_like(n, seed=0, l2=5.0):
    """G + λI with a power-law diagonal, like the matrices EASE inverts."""
    rng = np.random.default_rng(seed)
    pop = 0.9 / (np.arange(n) + 1.0) ** 0.8
    X = (rng.random((20 * n, n)) < pop[rng.permutation(n)]).astype(np.float64)
    return X.T @ X + l2 * np.eye(n)


def relerr(a, ref):
    return np.abs(np.asarray(a, np.float64) - ref).max() / np.abs(ref).max()


def tol(dtype):
    return 1e-3 if dtype == np.float32 else 1e-8


# ---------------------------------------------------------------------------------------------
# agreement with float64 LAPACK
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_every_route_matches_numpy(method, dtype, n):
    A = random_spd(n, seed=n).astype(dtype)
    ref = np.linalg.inv(A.astype(np.float64))  # exact inverse of the rounded input
    out = A.copy()
    assert spd_inverse_inplace(out, method=method, num_threads=NT) is out
    assert out.dtype == dtype
    assert relerr(out, ref) < tol(dtype)
    np.testing.assert_array_equal(out, out.T)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_power_law_gram(method, dtype):
    A = gram_like(300, seed=1).astype(dtype)
    ref = np.linalg.inv(A.astype(np.float64))
    out = A.copy()
    spd_inverse_inplace(out, method=method, num_threads=2)  # 2 threads here
    assert relerr(out, ref) < (1e-4 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype, cond, tolerance", [(np.float64, 1e6, 1e-8), (np.float64, 1e10, 1e-4),
                                                    (np.float32, 1e3, 1e-3), (np.float32, 1e5, 5e-2)])
def test_ill_conditioned(method, dtype, cond, tolerance):
    A = random_spd(150, cond=cond, seed=3).astype(dtype)
    ref = np.linalg.inv(A.astype(np.float64))
    out = A.copy()
    spd_inverse_inplace(out, method=method, num_threads=NT)
    assert relerr(out, ref) < tolerance


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [200, 513])
def test_recursive_equals_lapack_to_rounding(dtype, n):
    """Same operations in a different order: the two routes differ by a few ulps of the result."""
    A = gram_like(n, seed=n).astype(dtype)
    a, b = A.copy(), A.copy()
    spd_inverse_inplace(a, method="lapack", num_threads=NT)
    spd_inverse_inplace(b, method="blocked", num_threads=NT)
    eps = np.finfo(dtype).eps
    cond = np.linalg.cond(A.astype(np.float64))
    assert relerr(b, a.astype(np.float64)) < 50 * eps * cond


@pytest.mark.parametrize("leaf", [1, 2, 3, 7, 32])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 5, 31, 97, 200])
def test_kernel_at_any_leaf_size(leaf, dtype, n):
    """Tiny leaves make deep recursions with odd splits (all blocks still in one buffer)."""
    A = random_spd(n, seed=leaf + n).astype(dtype)
    ref = np.linalg.inv(A.astype(np.float64))
    out = A.copy()
    out[np.tril_indices(n, -1)] = np.nan
    info, rcond = _spdinv.spd_inverse_recursive(out, leaf)
    assert info == 0 and 0 < rcond <= 1.01
    assert relerr(np.triu(out) + np.triu(out, 1).T, ref) < tol(dtype)
    assert np.isnan(out[np.tril_indices(n, -1)]).all()  # lower triangle untouched


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernel_phases(dtype):
    """Cholesky, triangular inverse and V·Vᵀ one by one, against numpy (row-major upper triangles)."""
    n, leaf = 150, 16
    A = random_spd(n, seed=9)
    U = np.linalg.cholesky(A).T  # A = UᵀU
    a = A.astype(dtype)
    assert _spdinv.cholesky_upper(a, leaf) == 0
    assert relerr(np.triu(a), U) < 10 * tol(dtype)
    V = np.linalg.inv(U)
    assert _spdinv.trtri_upper(a, leaf) == 0
    assert relerr(np.triu(a), V) < 10 * tol(dtype)
    assert _spdinv.lauum_upper(a, leaf) == 0
    assert relerr(np.triu(a), np.triu(V @ V.T)) < 10 * tol(dtype)


def test_kernel_argument_errors():
    with pytest.raises(ValueError, match="leaf"):
        _spdinv.spd_inverse_recursive(np.eye(3), 0)
    with pytest.raises(ValueError, match="square"):
        _spdinv.spd_inverse_recursive(np.ones((3, 4)))
    assert _spdinv.spd_inverse_recursive(np.zeros((0, 0))) == (0, 1.0)


def test_rcond_matches_lapack():
    A = gram_like(200, seed=4)
    _, r1 = _spdinv.spd_inverse_recursive(A.copy())
    from lae_fast import _lapack

    _, r2 = _lapack.potrf_potri_upper(A.copy())
    assert r1 == pytest.approx(r2, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# the contract: upper triangle only, clear errors, never garbage
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_only_the_upper_triangle_is_read(method, dtype):
    n = 300
    A = gram_like(n, seed=5).astype(dtype)
    ref = np.linalg.inv(A.astype(np.float64))
    out = A.copy()
    out[np.tril_indices(n, -1)] = np.nan
    spd_inverse_inplace(out, method=method, num_threads=NT)
    assert np.isfinite(out).all() and relerr(out, ref) < tol(dtype)
    out = A.copy()
    out[np.tril_indices(n, -1)] = -7.0
    spd_inverse_inplace(out, method=method, mirror=False, num_threads=NT)
    assert relerr(np.triu(out), np.triu(ref)) < tol(dtype)
    assert np.all(out[np.tril_indices(n, -1)] == -7.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_not_positive_definite(method, dtype):
    A = np.diag([2.0, 1.0, -1.0, 4.0]).astype(dtype)
    with pytest.raises(np.linalg.LinAlgError, match="order 3"):
        spd_inverse_inplace(A, method=method, num_threads=NT)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        spd_inverse_inplace(np.full((5, 5), 4.0, dtype=dtype), method=method)
    with pytest.raises(np.linalg.LinAlgError, match="order 1"):
        spd_inverse_inplace(-random_spd(6, seed=6).astype(dtype), method=method)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 129, 200, 300])
def test_failing_minor_deep_in_the_recursion(method, dtype, k):
    """The order named in the error is the same whichever route (and block) meets it."""
    A = gram_like(300, seed=7).astype(dtype)
    A[k - 1, k - 1] = -1.0
    with pytest.raises(np.linalg.LinAlgError, match=f"order {k} failed"):
        spd_inverse_inplace(A, method=method, num_threads=NT)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_singular_to_working_precision(method, dtype):
    """Cholesky may pass on a numerically singular matrix; the rcond check still refuses it."""
    A = random_spd(60, cond=1e12 if dtype == np.float32 else 1e20, seed=8).astype(dtype)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite|singular to"):
        spd_inverse_inplace(A, method=method, num_threads=NT)


@pytest.mark.parametrize("method", METHODS)
def test_nan_in_the_upper_triangle_is_refused(method):
    A = gram_like(150, seed=2)
    A[3, 90] = np.nan
    with pytest.raises(np.linalg.LinAlgError):
        spd_inverse_inplace(A, method=method, num_threads=NT)


def test_unknown_method():
    with pytest.raises(ValueError, match="method='fast' is not one of 'auto', 'lapack', 'blocked'"):
        spd_inverse_inplace(np.eye(3), method="fast")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 10, 2000, 50000])
def test_auto_choice_is_a_route(dtype, n):
    assert choose_spd_method(n, dtype) in ("lapack", "blocked")


@pytest.mark.parametrize("dtype", DTYPES)
def test_auto_above_the_threshold(dtype):
    """Large matrices take the recursive route under "auto", with the same result."""
    n = 1600
    assert choose_spd_method(n, dtype) == "blocked" and choose_spd_method(100, dtype) == "lapack"
    rng = np.random.default_rng(11)
    S = rng.standard_normal((n, n))
    S += S.T
    # SPD by diagonal dominance, with a power-law spread on the diagonal
    S[np.diag_indices(n)] = np.abs(S).sum(axis=1) + 1e4 / np.arange(1, n + 1) ** 0.7
    A = S.astype(dtype)
    a, b = A.copy(), A.copy()
    spd_inverse_inplace(a, num_threads=2)
    spd_inverse_inplace(b, method="blocked", num_threads=2)
    np.testing.assert_array_equal(a, b)  # the same computation
    ref = np.linalg.inv(A.astype(np.float64))
    assert relerr(a, ref) < tol(dtype)


@pytest.mark.parametrize("method", METHODS)
def test_empty(method):
    assert spd_inverse_inplace(np.zeros((0, 0)), method=method).shape == (0, 0)


# ---------------------------------------------------------------------------------------------
# the benchmarks, on tiny inputs (numbers must be sane, speed is not asserted)
# ---------------------------------------------------------------------------------------------
def test_powerlaw_spd_looks_like_a_gram():
    from lae_fast.solver_bench import powerlaw_spd

    A = powerlaw_spd(300, l2=10.0, seed=0)
    d = np.diagonal(A) - 10.0
    assert A.dtype == np.float64 and np.array_equal(A, A.T)
    assert d.max() > 5 * np.median(d)  # power-law popularity: a few heavy items
    np.linalg.cholesky(A)


def test_bench_solvers_tiny():
    from lae_fast.solver_bench import ROUTES, bench_solvers, format_solver_table

    lines = []
    res = bench_solvers([8, 40], repeat=2, num_threads=1, progress=lines.append)
    assert [r["n"] for r in res] == [8, 40] and len(lines) == 2
    for r in res:
        assert set(r["gemm"]) == {"float32", "float64"}
        assert all(g["gflops"] > 0 and g["seconds"] > 0 for g in r["gemm"].values())
        assert r["sgemm_bound_s"] > 0 and r["matrix"]["cond1"] >= 1
        assert r["auto"]["float32"] in ("lapack", "blocked")
        assert [row["key"] for row in r["routes"]] == list(ROUTES)
        for row in r["routes"]:
            assert row["error"] is None
            assert row["seconds"] > 0 and len(row["times"]) == 2
            assert row["gflops"] > 0 and row["peak_fraction"] > 0 and row["x_bound"] > 0
            assert row["b_max_err"] < (1e-4 if row["dtype"] == "float32" else 1e-10)
            assert row["p_rel_err"] < (1e-5 if row["dtype"] == "float32" else 1e-12)
            if row.get("peak_mib") is not None:
                assert row["peak_x"] >= 1.0
    table = format_solver_table(res)
    assert "| numpy.linalg.inv (LU) | float64 | 2n^3 |" in table and "n = 40" in table


def test_bench_solvers_route_selection_and_errors():
    from lae_fast.solver_bench import bench_solvers

    res = bench_solvers([30], routes=["blocked-f32", "lapack-f32"], repeat=1, memory=False)
    assert [row["key"] for row in res[0]["routes"]] == ["lapack-f32", "blocked-f32"]  # fixed order
    assert all(row.get("peak_mib") is None for row in res[0]["routes"])
    with pytest.raises(ValueError, match="unknown route"):
        bench_solvers([30], routes=["magic"])
    with pytest.raises(ValueError, match="repeat"):
        bench_solvers([30], repeat=0)
    with pytest.raises(ValueError, match="positive"):
        bench_solvers([0])


@pytest.fixture
def npz_file(tmp_path):
    import scipy.sparse as sp

    from lae_fast.data import Interactions, save_npz

    rng = np.random.default_rng(0)
    X = sp.random(200, 60, density=0.1, random_state=rng, format="csr")
    path = tmp_path / "data.npz"
    save_npz(path, Interactions.from_matrix(X))
    return path


def test_bench_fit(npz_file, tmp_path):
    from lae_fast import load_model
    from lae_fast.solver_bench import bench_fit, format_fit_report

    out = tmp_path / "m.lae"
    res = bench_fit(str(npz_file), l2=10.0, output=str(out))
    assert res["n_items"] == 60 and res["n_users"] == 200 and res["dtype"] == "float32"
    s = res["seconds"]
    for key in ("load", "gram", "inverse", "scaling", "save", "total"):
        assert s[key] >= 0
    assert s["total"] >= s["load"] + s["save"]
    assert res["peak_rss_mib"] > 0 and res["budget_mib"] > 0
    assert res["inverse_method"] in ("lapack", "blocked")
    assert load_model(str(out)).B_.shape == (60, 60)
    text = format_fit_report(res)
    assert "inverse" in text and "peak RSS" in text
    res64 = bench_fit(str(npz_file), model="rdlae", dtype="float64")
    assert res64["dtype"] == "float64" and res64["output"] is None
    with pytest.raises(ValueError, match="model='nope'"):
        bench_fit(str(npz_file), model="nope")


def test_bench_fit_keeps_the_memory_budget_on_small_data(tmp_path):
    """`lae-fast bench fit` on small data (n = 3000: a 34 MiB n×n) is within 1.25 x n² x 4 B + X + the BLAS
    allowance (it used to read OVER: the measure counted the file reading and the BLAS start-up; what a process
    pays once is a few MiB whatever n, so n is large enough for n² to dominate on any machine), and the measure
    is real: it sees the n×n buffer. A fresh process, as the command runs, so no freed memory is reused."""
    import json
    import subprocess
    import sys

    import scipy.sparse as sp

    from lae_fast.data import Interactions, save_npz
    from lae_fast.solver_bench import PeakMeter

    if not PeakMeter().available:
        pytest.skip("peak memory needs Linux /proc/self/clear_refs")
    X = sp.random(1200, 3000, density=0.03, format="csr", random_state=np.random.default_rng(1))
    save_npz(tmp_path / "d.npz", Interactions.from_matrix(X))
    proc = subprocess.run([sys.executable, "-c", "from lae_fast.cli import main; main()", "bench", "fit",
                           str(tmp_path / "d.npz"), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res["within_budget"] is True, {k: res[k] for k in ("fit_peak_mib", "budget_mib", "peak_above_start_mib")}
    assert res["peak_above_start_mib"]["fit"] >= 0.9 * res["matrix_mib"], res


# ---------------------------------------------------------------------------------------------
# lae-fast bench
# ---------------------------------------------------------------------------------------------
def test_cli_help():
    from lae_fast.cli_bench import bench

    runner = CliRunner()
    for args in ([], ["solvers"], ["fit"]):
        res = runner.invoke(bench, args + ["--help"])
        assert res.exit_code == 0, res.output
    assert "solvers" in runner.invoke(bench, ["--help"]).output


def test_cli_solvers_json():
    from lae_fast.cli_bench import bench

    res = CliRunner().invoke(bench, ["solvers", "--n", "12", "20", "--repeat", "1", "--route", "lapack-f32",
                                     "--route", "blocked-f64", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [d["n"] for d in data] == [12, 20]
    assert [r["key"] for r in data[0]["routes"]] == ["blocked-f64", "lapack-f32"]


def test_cli_solvers_markdown_and_usage_errors():
    from lae_fast.cli_bench import bench

    runner = CliRunner()
    res = runner.invoke(bench, ["solvers", "16", "--repeat", "1", "--no-memory", "--route", "numpy-f64"])
    assert res.exit_code == 0 and "| numpy.linalg.inv (LU) |" in res.output
    res = runner.invoke(bench, ["solvers"])
    assert res.exit_code == 2 and "at least one matrix order" in res.output
    res = runner.invoke(bench, ["solvers", "--n", "0"])
    assert res.exit_code == 2
    res = runner.invoke(bench, ["solvers", "--n", "10", "--route", "fastest"])
    assert res.exit_code == 2


def test_cli_fit(npz_file, tmp_path):
    from lae_fast.cli_bench import bench

    runner = CliRunner()
    res = runner.invoke(bench, ["fit", str(npz_file), "--l2", "10", "--json"])
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.output)["seconds"]) >= {"load", "gram", "inverse", "scaling", "save"}
    res = runner.invoke(bench, ["fit", str(npz_file)])
    assert res.exit_code == 0 and "inverse" in res.output
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not an npz")
    res = runner.invoke(bench, ["fit", str(bad)])
    assert res.exit_code == 1 and res.output.startswith("Error: ") and "Traceback" not in res.output
    res = runner.invoke(bench, ["fit", str(tmp_path / "missing.npz")])
    assert res.exit_code == 2
