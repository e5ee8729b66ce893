"""``lae-fast bench``: the SPD-inverse routes side by side, and a fit step by step.

Registered by ``lae_fast.cli`` with ``main.add_command(bench)``. Thin commands
over :mod:`lae_fast.solver_bench`, imported inside the commands so ``--help``
stays instant.
"""
from __future__ import annotations

import click

from ._cli_common import check_outputs, data_options, echo_json, library_errors, neighbors_option, reader_options
from .models.ease import EASE, LinearAutoencoder
from .models.registry import model_names

__all__ = ["bench"]

_ROUTE_KEYS = ("numpy-f64", "scipy-pos-f64", "lapack-f64", "blocked-f64", "lapack-f32", "blocked-f32")


def _root_settings(ctx: click.Context) -> tuple:
    """``(num_threads, quiet)`` from the main group's context object, if any."""
    obj = ctx.find_root().obj
    return getattr(obj, "num_threads", None), bool(getattr(obj, "quiet", False))


@click.group(name="bench", context_settings={"help_option_names": ["-h", "--help"]})
def bench() -> None:
    """Benchmarks: SPD-inverse routes against the GEMM peak, and a fit step by step.

    \b
    Examples:
      lae-fast bench solvers --n 4000
      lae-fast bench fit data.npz
    """


@bench.command(name="solvers")
@click.argument("sizes", nargs=-1, type=click.IntRange(min=1))
@click.option("--n", "n_opt", multiple=True, type=click.IntRange(min=1),
              help="Matrix order (repeatable; further sizes may follow as arguments: --n 4000 8000).")
@click.option("--route", "routes", multiple=True, type=click.Choice(_ROUTE_KEYS),
              help="Only these routes (repeatable; default: all). The float64 numpy reference is "
                   "computed anyway for the error column.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True,
              help="Alternating rounds; the median is reported.")
@click.option("--l2", type=float, default=500.0, show_default=True, help="Ridge λ on the diagonal of G.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic data.")
@click.option("--no-memory", is_flag=True, help="Skip the per-route peak-memory reading.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Markdown tables.")
@click.pass_context
@library_errors
def solvers(ctx: click.Context, sizes, n_opt, routes, repeat, l2, seed, no_memory, as_json):
    """Time and check every SPD-inverse route on a power-law Gram of order N.

    Routes: numpy.linalg.inv (float64, LU), scipy.linalg.inv(assume_a="pos")
    (float64), LAPACK potrf+potri and lae-fast's recursive BLAS-3 route (float32
    and float64). For each: seconds, GFLOP/s (n³ for Cholesky-based routes, 2n³
    for LU), share of the GEMM rate measured in the same run, time over
    n³ / SGEMM rate, peak memory and the max error of EASE's B against float64.

    \b
    Examples:
      lae-fast bench solvers --n 4000 8000
      lae-fast bench solvers 2000 --route lapack-f32 --route blocked-f32 --repeat 5 --json
    """
    from .solver_bench import bench_solvers, format_solver_table

    all_sizes = list(n_opt) + list(sizes)
    if not all_sizes:
        raise click.UsageError("give at least one matrix order, e.g. --n 4000")
    num_threads, quiet = _root_settings(ctx)
    progress = None if (quiet or as_json) else (lambda line: click.echo(line, err=True))
    results = bench_solvers(all_sizes, routes=list(routes) or None, repeat=repeat, l2=l2,
                            num_threads=num_threads, seed=seed, memory=not no_memory, progress=progress)
    if as_json:
        echo_json(results)
    else:
        click.echo(format_solver_table(results))


@bench.command(name="fit")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "model_name", type=click.Choice(model_names(base=LinearAutoencoder)),
              default=EASE.name, show_default=True, help="Model of the EASE family.")
@click.option("--l2", type=float, default=None, help="L2 regularisation λ (default: the model's).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@neighbors_option()
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Save the model here (default: a temporary file, deleted).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@data_options()
@click.pass_context
@library_errors
def fit(ctx: click.Context, data, model_name, l2, dtype, neighbors, output, as_json, user_col, item_col, rating_col,
        sep, header, min_rating):
    """Fit a model on DATA (.npz or CSV/TSV) and time load, Gram, inverse, scaling and save.

    Also prints the peak RSS of the process, and the fit's own peak (above the
    RSS before it, plus X) against the memory budget 1.25 × n² × bytes per
    float + the size of X + 4 MiB of BLAS work buffers per thread.

    \b
    Examples:
      lae-fast bench fit data.npz
      lae-fast bench fit ratings.csv --dtype float64 --json
      lae-fast bench fit data.npz --neighbors 64
    """
    from .solver_bench import bench_fit, format_fit_report

    check_outputs(output)
    num_threads, _ = _root_settings(ctx)
    res = bench_fit(data, model=model_name, l2=l2, dtype=dtype, num_threads=num_threads, output=output,
                    neighbors=neighbors,
                    read_kwargs=reader_options(user_col, item_col, rating_col, sep, header, min_rating=min_rating))
    if as_json:
        echo_json(res)
    else:
        click.echo(format_fit_report(res))
