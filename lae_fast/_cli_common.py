"""Pieces shared by every ``lae-fast`` command module: the run context and the error policy."""
from __future__ import annotations

import contextlib
import functools
import json
import time
from typing import Any, Iterator, Optional

import click

__all__ = ["Context", "pass_ctx", "library_errors", "echo_json"]


class Context:
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


def library_errors(func):
    """Turn the library's documented exceptions into one clean CLI error line."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from numpy.linalg import LinAlgError

        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except (ValueError, TypeError, MemoryError, LinAlgError, OSError, RuntimeError, ImportError) as exc:
            raise click.ClickException(str(exc) or type(exc).__name__) from None

    return wrapper


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))
