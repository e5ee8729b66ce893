"""``lae-fast recommend-all`` and the sharded path of ``lae-fast fit`` (Dask, optional extra).

Registered by ``lae_fast.cli``. ``--scheduler ADDRESS`` picks where the per-user
work runs: a dask scheduler (``tcp://host:8786``), ``local`` / ``local:N`` (a
LocalCluster on this machine), or nothing: a plain loop in this process.
:mod:`lae_fast.distributed` is imported inside the commands so ``--help`` stays
instant and dask is needed only when used.
"""
from __future__ import annotations

import glob
import os
from typing import Any, Dict, Optional

import click

from ._cli_common import Context, column_spec, echo_json, library_errors, pass_ctx, refuse_flags
from .models.base import NEIGHBORS_OPTION
from .models.registry import model_names

__all__ = ["recommend_all_command", "fit_sharded", "is_sharded_source", "SCHEDULER_HELP"]

SCHEDULER_HELP = ("Run the per-user work on dask: a scheduler address (tcp://host:8786), local (a LocalCluster "
                  "of one worker with a thread per CPU) or local:N (N one-thread workers). Default: in this process.")


def is_sharded_source(data: str) -> bool:
    """A directory or a glob pattern: read as user shards, not as one file (one parquet file is one file)."""
    return os.path.isdir(data) or glob.has_magic(data)


def _scheduler_label(scheduler: Optional[str]) -> str:
    return "in this process" if scheduler is None else f"on dask ({scheduler})"


def _shard_paths(data: str, rating_col: Optional[str], min_rating: Optional[float]):
    """The shard files, after refusing --rating-col/--min-rating for a format without ratings (npz)."""
    from .data.formats import file_format
    from .distributed import list_shards

    paths = list_shards(data)
    refuse_flags(paths[0], file_format(paths[0]), {"rating_col": rating_col, "min_rating": min_rating})
    return paths


def fit_sharded(obj: Context, model: Any, data: str, scheduler: Optional[str], user_col: Optional[str],
                item_col: Optional[str], rating_col: Optional[str], min_rating: Optional[float], output: str,
                as_json: bool, check_users: bool = True) -> None:
    """``lae-fast fit`` on shards: Gram summed over shards (on dask when ``scheduler``), inverse here."""
    from .distributed import connect, fit_distributed

    if not type(model).solves_from_gram() or model.takes_embeddings:
        usable = model_names(from_gram=True, takes_embeddings=False)
        raise click.UsageError(f"--scheduler and sharded DATA support {', '.join(usable)}, not {model.name!r} "
                               "(text models: lae_fast.distributed.fit_distributed with item_ids= and "
                               "item_embeddings=)")
    n_shards = len(_shard_paths(data, rating_col, min_rating))
    with connect(scheduler) as client:
        route = ("neighbour lists summed over" if model.get_params().get(NEIGHBORS_OPTION) is not None
                 else "Gram over")
        with obj.step(f"{route} {n_shards} shards {_scheduler_label(scheduler)}, then the solve"):
            fit_distributed(model, data, client=client, user_col=column_spec(user_col or "user"),
                            item_col=column_spec(item_col or "item"), rating_col=column_spec(rating_col),
                            min_rating=min_rating, num_threads=obj.num_threads, check_users=check_users)
    with obj.step(f"writing {output}"):
        model.save(output)
    n_items = int(model.B_.shape[0])
    params = model.get_params()
    params["dtype"] = model.validated_params()["dtype"].name
    summary: Dict[str, Any] = {"model": model.name, "params": params, "n_users": model.n_users_,
                               "n_items": n_items, "nnz": model.nnz_, "output": output,
                               "fit_seconds": model.fit_seconds_, "shards": n_shards, "scheduler": scheduler,
                               "solver": getattr(model, "solver_", "dense")}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"saved {type(model).__name__} ({n_items} items, {model.n_users_} users in {n_shards} shards) "
                   f"to {output}")


@click.command(name="recommend-all")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.argument("histories", metavar="HISTORIES")
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False),
              help="Directory for part-NNNNN.parquet (user, rank, item, score), one per shard.")
@click.option("--format", "fmt", type=click.Choice(["parquet", "csv"]), default="parquet", show_default=True,
              help="Format of the part files (csv: quoted where needed, scores to 6 digits).")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=100, show_default=True, help="Items per user.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
@click.option("--keep-seen", is_flag=True, help="Allow items the user already has.")
@click.option("--user-col", default="user", show_default=True, help="User column of parquet shards.")
@click.option("--item-col", default="item", show_default=True, help="Item column of parquet shards.")
@click.option("--rating-col", default=None, help="Rating column of parquet shards (default: found by name).")
@click.option("--min-rating", type=float, default=None,
              help="Histories hold the rows rated at least this (parquet shards).")
@click.option("--broadcast", is_flag=True,
              help="Send B from here to every worker once, instead of each worker memory-mapping MODEL "
                   "(for workers that do not share this file system).")
@click.option("--batch-users", type=click.IntRange(min=1), default=65536, show_default=True,
              help="Users per kernel call and parquet row group.")
@click.option("--overwrite", is_flag=True, help="Replace part-*.parquet files already in the output directory.")
@click.option("--no-verify", is_flag=True, help="Skip the model file's checksum (fast on huge files).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_ctx
@library_errors
def recommend_all_command(obj: Context, model_path, histories, output_dir, fmt, k, scheduler, keep_seen, user_col,
                          item_col, rating_col, min_rating, broadcast, batch_users, overwrite, no_verify, as_json):
    """Top-K for every user in HISTORIES (npz/parquet shards: a directory, glob or file), as parquet.

    Parquet shards are read as one file is (--user-col, --item-col, --rating-col,
    --min-rating): with --min-rating a history is the rows rated at least that.

    Each shard is ranked by the compiled kernel on a worker (or in this process
    without --scheduler); its list is exactly `lae-fast recommend`'s for that user.
    Items the model does not know are ignored (counted in the summary).

    \b
    Examples:
      lae-fast recommend-all ease.lae shards/ -o recs/ -k 100
      lae-fast recommend-all ease.lae 'histories/*.parquet' -o recs/ --overwrite --scheduler tcp://10.0.0.5:8786
      lae-fast recommend-all ease.lae shards/ -o recs-local/ --scheduler local:2 --json
      lae-fast recommend-all ease.lae shards/ -o recs-csv/ --format csv
      lae-fast recommend-all ease.lae ratings/ -o recs-positives/ --min-rating 4
    """
    from .distributed import connect, recommend_all

    n_shards = len(_shard_paths(histories, rating_col, min_rating))
    with connect(scheduler) as client:
        with obj.step(f"ranking {n_shards} shards {_scheduler_label(scheduler)}"):
            res = recommend_all(model_path, histories, output_dir, N=k, client=client,
                                filter_already_liked_items=not keep_seen, user_col=column_spec(user_col),
                                item_col=column_spec(item_col), rating_col=column_spec(rating_col),
                                min_rating=min_rating,
                                broadcast=True if broadcast else None, batch_users=batch_users,
                                num_threads=obj.num_threads, overwrite=overwrite, verify=not no_verify, format=fmt)
    if res.n_unknown:
        click.echo(f"warning: {res.n_unknown} history interactions name items the model does not know; ignored",
                   err=True)
    summary = {"output_dir": res.output_dir, "files": len(res.files), "users": res.n_users, "rows": res.n_rows,
               "unknown_items": res.n_unknown, "seconds": round(res.seconds, 3), "scheduler": scheduler}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote top-{k} lists of {res.n_users} users ({res.n_rows} rows) to {len(res.files)} {fmt} "
                   f"files in {res.output_dir}")
