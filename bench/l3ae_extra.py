"""L3AE and its text-only baselines as extra rows of docs/RESULTS.md (ml-1m/weak only).

    python bench/reproduce.py --extra bench/l3ae_extra.py

Uses the split and the metric code of ``bench/reproduce.py`` and the tuning of
``bench/reproduce_l3ae.py`` (validation ndcg@20), so the rows sit beside the
EASE family on the very same test users.
"""
from __future__ import annotations

import time

from reproduce_l3ae import tune_models

from lae_fast.text import default_encoder, embed_items


def extra_models(setting):
    if setting.name != "ml-1m/weak":  # the L3AE paper's protocol; the item texts come with ML-1M
        return []
    E, _ = embed_items(setting.interactions.item_ids, setting.item_texts, default_encoder())
    log = []
    t0 = time.perf_counter()
    results = tune_models(setting.split, E, log)
    print(f"  text models tuned in {time.perf_counter() - t0:.0f} s", flush=True)
    return [{"name": name, "model": model, "params": params, "fit_seconds": seconds, "val": val}
            for name, (val, params, model, seconds) in results if name != "EASE"]
