"""PNG figures of tuning runs and long-tail metrics (optional extra: ``pip install 'lae-fast[plot]'``).

matplotlib is imported only when a figure is drawn, through its object
interface (``Figure`` + the Agg canvas): no pyplot, no global backend
switch, safe in servers and tests.
"""
from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .io import atomic_write
from .models.ease import LinearAutoencoder
from .models.registry import model_names

__all__ = ["MissingDependencyError", "require_matplotlib", "plot_tuning", "plot_head_tail"]

PathLike = Union[str, "os.PathLike[str]"]
_INSTALL = "pip install 'lae-fast[plot]'"


class MissingDependencyError(ImportError, RuntimeError):
    """An optional dependency is not installed; the message says what to install."""


def require_matplotlib():
    """Import matplotlib's Figure and Agg canvas, or say how to install them.

    Returns
    -------
    Figure, FigureCanvasAgg : type, type

    Raises
    ------
    MissingDependencyError
        matplotlib is not importable (message names ``pip install 'lae-fast[plot]'``).
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependencyError(
            f"plots need matplotlib, which is not installed ({exc}); install it with {_INSTALL} "
            "(or pip install matplotlib)") from None
    return Figure, FigureCanvasAgg


def _save(fig: Any, canvas_cls: Any, path: PathLike) -> str:
    name = os.fspath(path)
    canvas_cls(fig)
    fmt = os.path.splitext(name)[1][1:].lower() or "png"  # as savefig(name) would choose
    with atomic_write(name) as fh:  # replaced whole, like every file lae-fast writes
        fig.savefig(fh, dpi=120, format=fmt)
    return name


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def plot_tuning(result: Any, path: PathLike, *, metric: Optional[str] = None) -> str:
    """Metric vs λ (and vs ξ), plus head/tail recall of the best point of each model.

    Parameters
    ----------
    result : lae_fast.tuning.TuneResult
    path : str or path-like
        Where to write the PNG.
    metric : str, optional
        Default: the metric the search selected on.

    Returns
    -------
    str
        ``path``.

    Notes
    -----
    Left: the metric on the selection set against λ (log scale), one line per
    dropout p, each point the best over ξ. Middle (when the ξ grid has
    several values): the metric against ξ at the winner's λ, one line per p.
    Right (when head/tail metrics were computed): ``recall_head@k`` and
    ``recall_tail@k`` of the best point of every model in the grid, one
    panel each. The winner is starred.
    """
    Figure, Canvas = require_matplotlib()
    metric = metric or result.metric
    rows = [r for r in result.rows if _finite(r.get(metric))]
    if not rows:
        raise ValueError(f"no grid point has a finite {metric}; nothing to plot")
    k = metric.split("@")[1]
    head_key, tail_key = f"recall_head@{k}", f"recall_tail@{k}"
    has_ht = any(head_key in r for r in rows)
    xis = sorted({r["xi"] for r in rows})
    panels = 1 + (len(xis) > 1) + 2 * has_ht
    fig = Figure(figsize=(4.6 * panels, 4.2))
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    on = result.on
    dropouts = sorted({r["dropout"] for r in rows})

    ax = axes[0]
    for p in dropouts:
        best_at: Dict[float, float] = {}
        for r in rows:
            if r["dropout"] == p:
                best_at[r["l2"]] = max(best_at.get(r["l2"], -math.inf), r[metric])
        lams = sorted(best_at)
        ax.plot(lams, [best_at[x] for x in lams], marker="o", label=f"p={p:g}" + (" (best ξ)" if len(xis) > 1 else ""))
    ax.plot([result.best["l2"]], [result.best[metric]], marker="*", markersize=16, color="k", linestyle="none",
            label="selected")
    lams = sorted({r["l2"] for r in rows})
    if min(lams) > 0:
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(lams)
    ax.set_xticklabels([f"{x:g}" for x in lams], fontsize=8, rotation=45 if len(lams) > 6 else 0)
    ax.set_xlabel("λ (l2)")
    ax.set_ylabel(f"{metric} ({on})")
    ax.set_title(f"{result.model}: {metric} vs λ")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)

    if len(xis) > 1:
        ax = axes[1]
        lam = result.best["l2"]
        for p in dropouts:
            pts = sorted((r["xi"], r[metric]) for r in rows if r["dropout"] == p and r["l2"] == lam)
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=f"p={p:g}")
        ax.plot([result.best["xi"]], [result.best[metric]], marker="*", markersize=16, color="k", linestyle="none")
        ax.set_xlabel("ξ (bound on diag B)")
        ax.set_ylabel(f"{metric} ({on})")
        ax.set_title(f"{metric} vs ξ at λ={lam:g}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)

    if has_ht:
        best_rows = {}
        for r in rows:
            cur = best_rows.get(r["model"])
            if cur is None or r[metric] > cur[metric]:
                best_rows[r["model"]] = r
        names = [m for m in model_names(base=LinearAutoencoder) if m in best_rows]  # catalogue order
        names += sorted(set(best_rows) - set(names))
        labels = [m.upper() for m in names]
        for ax, key, color in ((axes[-2], head_key, "tab:blue"), (axes[-1], tail_key, "tab:orange")):
            _bars(ax, labels, [best_rows[m].get(key, math.nan) for m in names], label=f"{key} ({on})", color=color)
            group = "head: top 20% items" if "head" in key else "tail: other 80% items"
            ax.set_title(f"{group}, best point per model", fontsize=10)
    fig.tight_layout()
    return _save(fig, Canvas, path)


def _bars(ax: Any, names: Sequence[str], values: Sequence[float], *, label: str, color: str) -> None:
    """One bar per model with its value written on top."""
    shown = [v if _finite(v) else 0.0 for v in values]
    bars = ax.bar(range(len(names)), shown, 0.6, color=color)
    for b, v in zip(bars, values):
        ax.annotate(f"{v:.3f}" if _finite(v) else "n/a", (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    top = max(shown) if shown else 0.0
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30 if len(names) > 4 else 0, fontsize=8)
    ax.set_ylabel(label)
    ax.grid(True, axis="y", alpha=0.3)


def plot_head_tail(metrics: Mapping[str, Mapping[str, Any]], path: PathLike, *, k: int = 20,
                   title: Optional[str] = None) -> str:
    """Head and tail recall@k per model: two bar panels (tail recall is several times smaller).

    Parameters
    ----------
    metrics : mapping
        Model name -> an :func:`lae_fast.evaluation.evaluate` result computed
        with ``head_tail=True`` (``recall_head@k``, ``recall_tail@k``).
    path : str or path-like
        Where to write the PNG.
    k : int, default=20
    title : str, optional

    Returns
    -------
    str
        ``path``.

    Raises
    ------
    ValueError
        A model's metrics lack ``recall_head@k`` / ``recall_tail@k``.
    """
    Figure, Canvas = require_matplotlib()
    names: List[str] = list(metrics)
    head_key, tail_key = f"recall_head@{k}", f"recall_tail@{k}"
    for name in names:
        if head_key not in metrics[name] or tail_key not in metrics[name]:
            raise ValueError(f"metrics of {name!r} have no {head_key} / {tail_key}; evaluate with "
                             f"head_tail=True and ks including {k}")
    fig = Figure(figsize=(2 * max(3.5, 0.8 * len(names) + 1.5), 4.0))
    for i, (key, color, group) in enumerate(((head_key, "tab:blue", "head: top 20% items"),
                                             (tail_key, "tab:orange", "tail: other 80% items"))):
        ax = fig.add_subplot(1, 2, i + 1)
        _bars(ax, names, [metrics[n][key] for n in names], label=key, color=color)
        ax.set_title(group, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, Canvas, path)
