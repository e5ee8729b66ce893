"""Pieces shared by every ``lae-fast`` command module: the run context, the global options, the error policy.

Error policy: a usage error prints its ``Error:`` line first, then where help is (click prints the usage
first); a library error becomes one ``Error:`` line (exit 1) whose advice names the flags the user can type
(the library's messages name Python keywords such as ``header=False``; :func:`cli_words` turns those into
``--no-header``).
"""
from __future__ import annotations

import contextlib
import functools
import json
import re
import time
import warnings
from typing import Any, Callable, Dict, Iterator, Mapping, Optional

import click

__all__ = ["Context", "pass_ctx", "library_errors", "echo_json", "LaeFastGroup", "GLOBAL_OPTIONS", "cli_words",
           "KEYWORD_FLAGS", "data_options", "column_spec", "group_global_options",
           "reader_options", "check_outputs", "refuse_flags", "neighbors_option"]


class Context:
    """What the global options set, for every command: ``num_threads`` and ``quiet``."""

    def __init__(self, num_threads: Optional[int], quiet: bool):
        self.num_threads = num_threads
        self.quiet = quiet

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        """Print a step and its duration to stderr (stdout stays clean for --json)."""
        if self.quiet:
            yield
            return
        click.echo(f"{message} ...", err=True, nl=False)
        t0 = time.perf_counter()
        try:
            yield
        except BaseException:
            click.echo(" failed", err=True)  # end the line so the error stands on its own
            raise
        click.echo(f" {time.perf_counter() - t0:.2f} s", err=True)


pass_ctx = click.make_pass_decorator(Context)


# -- library advice in command-line words ---------------------------------------------------------

#: library keyword -> the flag that sets it. Every flag here exists, the reader flags on every command that
#: reads interactions (tests/test_cli_consistency.py checks both).
KEYWORD_FLAGS: Dict[str, str] = {
    "sep": "--sep", "header": "--header", "user_col": "--user-col", "item_col": "--item-col",
    "rating_col": "--rating-col", "min_rating": "--min-rating", "id_field": "--id-field",
    "text_field": "--text-field", "template": "--text-template", "check_users": "--check-users",
    "dtype": "--dtype", "val_fraction": "--val-fraction", "overwrite": "--overwrite", "neighbors": "--neighbors",
}
#: (keyword, Python value) -> what the user types instead of "flag value"
_VALUE_FLAGS: Dict[tuple, str] = {
    ("header", "True"): "--header", ("header", "False"): "--no-header",
    ("check_users", "True"): "--check-users", ("check_users", "False"): "--no-check-users",
    ("overwrite", "True"): "--overwrite",
    ("min_rating", "None"): "--min-rating 0",  # the flag takes numbers; 0 keeps every rating
}
# ``keyword=`` with an optional value; keywords with an underscore are unambiguous even without "="
_WITH_VALUE = re.compile(r"(?<![\w-])(?P<kw>" + "|".join(KEYWORD_FLAGS) + r")="
                         r"(?P<value>'[^']*'|\"[^\"]*\"|[^\s,;:()]+)?")
_BARE = re.compile(r"(?<![\w=-])(?P<kw>" + "|".join(k for k in KEYWORD_FLAGS if "_" in k) + r")\b(?!=)")


def _flag(keyword: str, value: Optional[str]) -> str:
    if not value:
        return KEYWORD_FLAGS[keyword]
    value = re.sub(r"^(np|numpy)\.", "", value)  # dtype=np.float64 -> --dtype float64
    return _VALUE_FLAGS.get((keyword, value), f"{KEYWORD_FLAGS[keyword]} {value}")


def cli_words(message: str) -> str:
    """A library message with its Python keywords written as the flags of ``lae-fast``.

    Examples
    --------
    >>> cli_words("the first line looks like data: pass header=False if the file has no header")
    'the first line looks like data: pass --no-header if the file has no header'
    >>> cli_words("pass text_field= with the right name, or a template=; or lower min_rating")
    'pass --text-field with the right name, or a --text-template; or lower --min-rating'
    """
    message = _WITH_VALUE.sub(lambda m: _flag(m["kw"], m["value"]), message)
    return _BARE.sub(lambda m: KEYWORD_FLAGS[m["kw"]], message)


def _show_warning(message: Any, category: type, filename: str, lineno: int, file: Any = None,
                  line: Optional[str] = None) -> None:
    click.echo(f"warning: {cli_words(str(message))}", err=True)


def library_errors(func):
    """Library exceptions become one clean CLI error line, warnings one ``warning:`` line, in command-line words."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from numpy.linalg import LinAlgError

        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (ValueError, TypeError, MemoryError, LinAlgError, OSError, RuntimeError, ImportError) as exc:
            raise click.ClickException(cli_words(str(exc) or type(exc).__name__)) from None

    return wrapper


# -- options of every command that reads an interactions file ----------------------------------------

def column_spec(value: Optional[str]) -> Any:
    """A column flag's value: digits are a 0-based position (the only way to name a column without a header)."""
    return int(value) if value is not None and value.strip().isdigit() else value


def data_options(*, min_rating: bool = True) -> Callable[[Callable], Callable]:
    """--user-col, --item-col, --rating-col, --sep, --header/--no-header (and --min-rating) of a reader."""
    col = "{} column of a CSV/TSV/Parquet file: a name or a 0-based position"
    opts = [
        click.option("--user-col", default=None, help=col.format("User") + " (default: auto-detect)."),
        click.option("--item-col", default=None, help=col.format("Item") + " (default: auto-detect)."),
        click.option("--rating-col", default=None, help=col.format("Rating") + "."),
        click.option("--sep", default=None, help="CSV separator (default: auto-detect)."),
        click.option("--header/--no-header", default=None,
                     help="Whether the first line of a CSV/TSV names the columns (default: it does)."),
    ]
    if min_rating:
        opts.append(click.option("--min-rating", type=float, default=None,
                                 help="Keep only rows with rating >= this (positives)."))

    def decorate(func: Callable) -> Callable:
        for opt in reversed(opts):
            func = opt(func)
        return func

    return decorate


def reader_options(user_col: Optional[str], item_col: Optional[str], rating_col: Optional[str],
                   sep: Optional[str], header: Optional[bool], **more: Any) -> Dict[str, Any]:
    """The keyword arguments of a reader from the flags of :func:`data_options`, those given only."""
    given = {"user_col": column_spec(user_col), "item_col": column_spec(item_col),
             "rating_col": column_spec(rating_col), "sep": sep, "header": header, **more}
    return {k: v for k, v in given.items() if v is not None}


# -- global options, accepted before or after the subcommand -------------------------------------------

def _check_num_threads(ctx: click.Context, param: click.Parameter, value: Optional[int]) -> Optional[int]:
    """--num-threads by the library's rule (not 0, at most the maximum), before any work starts."""
    from ._threads import resolve_num_threads

    if value is not None:
        try:
            resolve_num_threads(value)
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(str(exc).replace("num_threads=", "", 1)) from None
    return value


def _set_on_context(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Callback of a global option given after the subcommand: store it on the shared Context."""
    if param.name == "num_threads":
        _check_num_threads(ctx, param, value)
    obj = ctx.find_object(Context)
    if obj is not None and value not in (None, False):
        setattr(obj, param.name, value)


#: (parameter declarations, keyword arguments) of the options every command accepts
GLOBAL_OPTIONS = (
    (("--num-threads",), dict(type=int, default=None, help="Threads for all kernels (default: "
                                                        "$LAE_FAST_NUM_THREADS, else the CPUs available).")),
    (("-q", "--quiet"), dict(is_flag=True, default=False, help="No progress lines on stderr.")),
)


def group_global_options(func: Callable) -> Callable:
    """The global options on the main group, before the subcommand (their values reach its callback)."""
    for decls, kwargs in reversed(GLOBAL_OPTIONS):
        extra = {"callback": _check_num_threads} if "--num-threads" in decls else {}
        func = click.option(*decls, **kwargs, **extra)(func)
    return func


class _UsageErrorFirst(click.UsageError):
    """A usage error shown as its ``Error:`` line first, then where help is (no usage line before it)."""

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message(), error.ctx)

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)
        if self.ctx is not None:
            click.echo(f"Try '{self.ctx.command_path} --help' for help.", file=file, err=file is None)


@contextlib.contextmanager
def _error_first() -> Iterator[None]:
    try:
        yield
    except _UsageErrorFirst:
        raise
    except click.UsageError as exc:
        raise _UsageErrorFirst(exc) from None


class LaeFastGroup(click.Group):
    """The ``lae-fast`` group: global options after the subcommand too, usage errors ``Error:`` first.

    Every command added (and every command of an added group) gets the global options, unless it
    declares an option of that name itself.
    """

    def add_command(self, cmd: click.Command, name: Optional[str] = None) -> None:
        _add_global_options(cmd)
        super().add_command(cmd, name)

    def make_context(self, info_name: Optional[str], args: list, parent: Optional[click.Context] = None,
                     **extra: Any) -> click.Context:
        with _error_first():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _error_first():
            return super().invoke(ctx)


def _add_global_options(cmd: click.Command) -> None:
    taken = {opt for p in cmd.params for opt in getattr(p, "opts", ())}
    for decls, kwargs in GLOBAL_OPTIONS:
        if not taken & set(decls):
            cmd.params.append(click.Option(decls, **kwargs, expose_value=False, callback=_set_on_context))
    for sub in getattr(cmd, "commands", {}).values():
        _add_global_options(sub)


def check_outputs(*paths: Optional[str]) -> None:
    """Refuse unusable output paths (a directory, device, FIFO; a missing folder) before any work starts."""
    from .io import check_target

    for path in paths:
        if path is not None:
            check_target(path)


def neighbors_option(what: str = "") -> Callable[[Any], Any]:
    """``--neighbors M``: the neighbourhood route of the models (docs/MODELS.md §4), for every command that fits."""
    return click.option("--neighbors", type=click.IntRange(min=1), default=None, metavar="M",
                        help="Solve each column on its M strongest neighbours: a sparse B, no n×n in memory "
                             "(docs/MODELS.md §4). Default: dense when n×n fits the memory budget, else 256." + what)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def refuse_flags(path: str, fmt: str, options: Mapping[str, Any]) -> None:
    """A usage error naming the flags (options not None) that the reader of ``fmt`` does not take."""
    from .data.formats import refused_options

    refused = refused_options(fmt, options)
    if refused:
        flags = "/".join("--" + k.replace("_", "-") for k in refused)
        raise click.UsageError(f"{flags} do not apply to {path} (a {fmt} file)")
