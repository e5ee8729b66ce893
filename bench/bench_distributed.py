"""Gram and all-user ranking on Dask (lae_fast.distributed) vs the in-process path, same shards.

    python bench/bench_distributed.py            # ML-20M-shaped: 136,677 users x 20,720 items, ~10M, 8 shards
    python bench/bench_distributed.py --quick    # 30k x 5k, 2M

Competitors, all on the same npz shards in one run, alternating round by round:
in-process ``lae_fast.gram`` on the whole matrix; ``distributed_gram(client=None)``
(the shard loop, no dask); and LocalClusters of worker processes: 1 worker x 1
thread, 2 workers x 1 thread, 1 worker x 2 threads. Ranking (top-100, own items
masked) runs on a subset of users with a random B, read by the workers from a
memory-mapped model file. Cluster start-up is timed apart.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np

import lae_fast
from _common import alternate, command_line, environment, peak_rss_mib, powerlaw_interactions, write_section
from lae_fast import distributed as ld
from lae_fast.data import Interactions

CLUSTERS = {"1 worker x 1 thread": (1, 1), "2 workers x 1 thread": (2, 1), "1 worker x 2 threads": (1, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--rank-users", type=int, default=16_000, help="users ranked (first shards' users)")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    if args.quick:
        label, (m, n, nnz) = "30k x 5k, ~2M", (30_000, 5_000, 2_000_000)
    else:
        label, (m, n, nnz) = "ML-20M-shaped: 136,677 x 20,720, ~10M", (136_677, 20_720, 10_000_000)
    X = powerlaw_interactions(m, n, nnz, seed=1)
    inter = Interactions.from_matrix(X)
    tmp = tempfile.mkdtemp(prefix="lae-bench-dist-")
    ld.save_shards(inter, os.path.join(tmp, "shards"), args.shards)
    rank_inter = Interactions.from_matrix(X[:args.rank_users])
    ld.save_shards(rank_inter, os.path.join(tmp, "rank"), 4)
    print(f"{label}: {X.nnz:,} interactions in {args.shards} shards under {tmp}", flush=True)

    clients, startup = {}, {}
    for name, (workers, threads) in CLUSTERS.items():
        t0 = time.perf_counter()
        # memory_limit=0: partial Grams are n² each and meant to stay in RAM (no spilling to disk)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                               dashboard_address=":0", memory_limit=0)
        clients[name] = Client(cluster)
        startup[name] = time.perf_counter() - t0

    shards = os.path.join(tmp, "shards")
    gram_funcs = {"in-process gram(X)": lambda: lae_fast.gram(X),
                  "in-process shard loop": lambda: ld.distributed_gram(shards).G}
    for name, client in clients.items():
        gram_funcs[name] = lambda c=client: ld.distributed_gram(shards, client=c).G
    print("Gram:", flush=True)
    gram = {}
    ref = None
    times = {k: [] for k in gram_funcs}
    equal = {k: True for k in gram_funcs}
    for _ in range(args.repeat):
        for name, func in gram_funcs.items():
            t0 = time.perf_counter()
            G = func()
            times[name].append(time.perf_counter() - t0)
            if ref is None:
                ref = G
            else:
                equal[name] = equal[name] and bool(np.array_equal(G, ref))
            del G
            print(f"  {name}: {times[name][-1]:.2f} s", flush=True)
    base = statistics.median(times["in-process gram(X)"])
    for name, t in times.items():
        gram[name] = (statistics.median(t), equal[name])
    del ref

    # ranking: a random B (scores need no fitted model), mapped from a model file by every worker
    rng = np.random.default_rng(0)
    model = lae_fast.EASE()
    model.B_ = rng.standard_normal((n, n), dtype=np.float32)
    model.item_ids_ = np.arange(n, dtype=np.int64)
    model_path = os.path.join(tmp, "random.lae")
    model.save(model_path)
    rank_dir = os.path.join(tmp, "rank")
    out = os.path.join(tmp, "out")
    rank_funcs = {"in-process recommend(X) (no parquet)": lambda: model.recommend(rank_inter.matrix, 100),
                  "in-process shard loop": lambda: ld.recommend_all(model_path, rank_dir, out, N=100,
                                                                    overwrite=True, verify=False)}
    for name, client in clients.items():
        rank_funcs[name] = lambda c=client: ld.recommend_all(model_path, rank_dir, out, N=100, client=c,
                                                            overwrite=True, verify=False)
    rank_funcs["2 workers x 1 thread, B broadcast"] = lambda: ld.recommend_all(
        model_path, rank_dir, out, N=100, client=clients["2 workers x 1 thread"], broadcast=True, overwrite=True,
        verify=False)
    print("Ranking:", flush=True)
    rank = alternate(rank_funcs, 1, verbose=True)
    rank_base = rank["in-process recommend(X) (no parquet)"][0]
    for client in clients.values():
        client.cluster.close()
        client.close()

    rows = [f"| {name} | {t:.2f} | {t / base:.2f}× | {'yes' if eq else '**NO**'} | "
            f"{startup.get(name, 0.0):.1f} |" for name, (t, eq) in gram.items()]
    rrows = [f"| {name} | {t:.2f} | {args.rank_users / t:,.0f} | {t / rank_base:.2f}× |"
             for name, (t, _) in rank.items()]
    body = (f"## Distributed Gram and ranking (Dask LocalCluster) vs in-process\n\n"
            f"Command: `{command_line()}`\n\n{environment()}"
            f"- data: {label} power-law synthetic, {X.nnz:,} interactions, {args.shards} npz shards (uncompressed); "
            f"float32; median of {args.repeat} alternating rounds; worker processes, memory_limit=0; kernel "
            f"threads per task = CPUs / dask threads on the host; peak RSS of the driver {peak_rss_mib():.0f} MiB\n"
            f"- Gram times include reading the shards, the tree sum, the transfer of the n×n result to the "
            f"driver and mirroring; cluster start-up is the last column, not included\n\n"
            "| Gram | seconds | vs in-process gram(X) | identical to gram(X) | cluster start s |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows) +
            f"\n\nRanking: top-100 (own items masked) for the {args.rank_users:,} users of 4 shards, random "
            f"float32 B {n}×{n} from a memory-mapped model file (checksum not re-verified; one run each; "
            "parquet written)\n\n"
            "| ranking | seconds | users/s | vs in-process recommend |\n|---|---|---|---|\n" + "\n".join(rrows))
    shutil.rmtree(tmp, ignore_errors=True)
    write_section("bench_distributed", body)
    print(body)


if __name__ == "__main__":
    main()
