"""The web-service recipe under load: examples/lae_service.py behind gunicorn, two uvicorn workers.

For each B served (float32, float16, int8, pruned m=100, all from one random 20,720-item B,
memory-mapped from a file), start the service on 127.0.0.1, drive it from a separate client
process (keep-alive HTTP/1.1 connections on asyncio, each sending the next query as soon as
the last answer arrived) at 1, 4, 16 and 64 connections, and record requests/s, p50 / p99 of
the request time, failed requests, the workers' CPU time per request and their PSS (how much
of B each worker is charged for: the file's pages are shared). Beside it, in this process, the
time of the library's own part of a request: ``Recommender.recommend_json`` (kernel and
encoding) on the same queries and the same file.

Then, on the int8 file: the file is replaced (atomically) under 16 connections and the workers
swap it in (their watcher looks every second): failed requests and the latency around the swap;
one worker is killed under load: what the clients lose; the endpoint as a plain ``def`` run in
FastAPI's thread pool beside the ``async def`` one; the encoding of an answer by FastAPI's
default encoder beside ``recommend_json``'s.

Queries: histories of 10-500 items (uniform), items uniform at random, N = 20, as in
bench/bench_serving.py. Client and service share the machine's CPUs.

    python bench/bench_service.py                  # 20,720 items, 4 s per point
    python bench/bench_service.py --quick          # 5,000 items, 1.5 s per point
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
N = 20
CONCURRENCY = (1, 4, 16, 64)


# -- the client: a separate process -----------------------------------------------------------------

def request_bytes(body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (b"POST /recommend HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)) + data


async def _client(port: int, requests: List[bytes], connections: int, seconds: float, warmup: float,
                  keep_bodies: int) -> dict:
    """``connections`` keep-alive connections, each sending the next request when its answer came."""
    clock = time.perf_counter  # loop.time() is in whole milliseconds under uvloop
    t_start = clock()
    t_measure, t_stop = t_start + warmup, t_start + warmup + seconds
    counter = iter(range(10 ** 12))
    records, failures, bodies = [], [], {}

    async def connect():
        return await asyncio.open_connection("127.0.0.1", port)

    async def conn_loop():
        reader = writer = None
        while clock() < t_stop:
            k = next(counter)
            q = k % len(requests)
            t0 = clock()
            try:
                if writer is None:
                    reader, writer = await connect()
                writer.write(requests[q])
                status = await reader.readline()
                if not status:
                    raise ConnectionResetError("the server closed the connection")
                length = 0
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                ok = status.startswith(b"HTTP/1.1 200")
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                ok, body = False, repr(exc).encode()
                if writer is not None:
                    writer.close()
                reader = writer = None
            t1 = clock()
            if t0 >= t_measure:
                records.append((t0 - t_measure, t1 - t0))
                if not ok:
                    failures.append((t0 - t_measure, body[:200].decode(errors="replace")))
                elif len(bodies) < keep_bodies and q not in bodies:
                    bodies[q] = body.decode()
        if writer is not None:
            writer.close()

    await asyncio.gather(*[conn_loop() for _ in range(connections)])
    return {"records": records, "failures": failures, "bodies": bodies, "seconds": seconds}


def client_main(args: argparse.Namespace) -> None:
    try:
        import uvloop  # a faster loop: less of the shared CPU for the client
        uvloop.install()
    except ImportError:
        pass
    with open(args.client_requests) as fh:
        bodies = json.load(fh)
    requests = [request_bytes(b) for b in bodies]
    out = asyncio.run(_client(args.port, requests, args.connections, args.seconds, args.warmup, args.keep_bodies))
    with open(args.client_output, "w") as fh:
        json.dump(out, fh)


# -- the service --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """gunicorn + 2 uvicorn workers serving one file, as examples/lae_service.py documents."""

    def __init__(self, model_path: str, *, workers: int = 2, reload_seconds: float = 1.0, verify: bool = True,
                 threadpool: bool = False, server: str = "gunicorn") -> None:
        self.port = free_port()
        env = dict(os.environ, LAE_FAST_MODEL=model_path, LAE_FAST_RELOAD_SECONDS=str(reload_seconds),
                   LAE_FAST_VERIFY="1" if verify else "0", OMP_NUM_THREADS="1",
                   LAE_FAST_THREADPOOL="1" if threadpool else "0")
        if server == "gunicorn":
            cmd = [sys.executable, "-m", "gunicorn", "lae_service:app", "--chdir", str(ROOT / "examples"),
                   "-w", str(workers), "-k", "uvicorn_worker.UvicornWorker", "-b", f"127.0.0.1:{self.port}",
                   "--log-level", "warning", "--graceful-timeout", "5"]
        else:  # "uvicorn-asyncio" or "uvicorn-uvloop": uvicorn's own --workers supervisor
            cmd = [sys.executable, "-m", "uvicorn", "lae_service:app", "--app-dir", str(ROOT / "examples"),
                   "--workers", str(workers), "--loop", server.split("-")[1], "--host", "127.0.0.1",
                   "--port", str(self.port), "--log-level", "warning"]
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.ready_seconds = self._wait_for_workers(workers)

    def _wait_for_workers(self, workers: int) -> float:
        import http.client

        deadline = time.monotonic() + 300
        while len(self.worker_pids()) < workers or not self._healthy():
            if self.proc.poll() is not None:
                raise RuntimeError("the service exited: " + self.proc.stderr.read().decode()[-2000:])
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not start in 300 s")
            time.sleep(0.05)
        # every worker answers (each loads the model at startup: verify=True reads the whole file)
        seen = set()
        while len(seen) < workers and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", "/health")
            seen.add(json.loads(conn.getresponse().read())["pid"])
            conn.close()
        return time.perf_counter() - self.t0

    def _healthy(self) -> bool:
        import http.client

        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request("GET", "/health")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def worker_pids(self) -> List[int]:
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as fh:
                return [int(p) for p in fh.read().split()]
        except OSError:
            return []

    def health(self) -> List[dict]:
        """/health of every worker (new connections land on either; asked until both answered)."""
        import http.client

        out: Dict[int, dict] = {}
        for _ in range(200):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            conn.request("GET", "/health")
            h = json.loads(conn.getresponse().read())
            conn.close()
            out[h["pid"]] = h
            if len(out) >= len(self.worker_pids()):
                break
        return list(out.values())

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def cpu_seconds(pids: List[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def memory_of(pid: int, path: str) -> dict:
    """RSS and PSS of a process, and the PSS of its mappings of ``path`` (MiB)."""
    out = {"rss": 0.0, "pss": 0.0, "pss_file": 0.0, "rss_file": 0.0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    out["rss"] = int(line.split()[1]) / 1024
                elif line.startswith("Pss:"):
                    out["pss"] = int(line.split()[1]) / 1024
        current = False
        with open(f"/proc/{pid}/smaps") as fh:
            for line in fh:
                first = line.split(maxsplit=1)[0]
                if "-" in first and not first.endswith(":"):  # a mapping's header line
                    current = line.rstrip().endswith(path)
                elif current and line.startswith("Pss:"):
                    out["pss_file"] += int(line.split()[1]) / 1024
                elif current and line.startswith("Rss:"):
                    out["rss_file"] += int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def run_client(port: int, requests_file: str, connections: int, seconds: float, warmup: float,
               keep_bodies: int = 0, during=None) -> dict:
    """Run the client process; ``during(t0)`` is called while it runs (for the reload and kill tests)."""
    out_file = requests_file + f".{connections}.out.json"
    cmd = [sys.executable, __file__, "--client", "--port", str(port), "--client-requests", requests_file,
           "--connections", str(connections), "--seconds", str(seconds), "--warmup", str(warmup),
           "--keep-bodies", str(keep_bodies), "--client-output", out_file]
    proc = subprocess.Popen(cmd)
    if during is not None:
        during(time.perf_counter())
    proc.wait(timeout=seconds + warmup + 600)
    if proc.returncode:
        raise RuntimeError(f"the client failed ({proc.returncode})")
    with open(out_file) as fh:
        return json.load(fh)


def summarize(res: dict) -> dict:
    lat = np.array([r[1] for r in res["records"]]) * 1e3
    return {"n": lat.size, "rps": lat.size / res["seconds"], "p50": float(np.percentile(lat, 50)),
            "p99": float(np.percentile(lat, 99)), "failed": len(res["failures"])}


# -- the benchmark ------------------------------------------------------------------------------------

def build_files(n: int, folder: str, queries: List[np.ndarray]) -> Dict[str, str]:
    from lae_fast import Recommender

    rng = np.random.default_rng(0)
    print(f"building a random {n}x{n} float32 B and its serving files ...", flush=True)
    B = rng.standard_normal((n, n), dtype=np.float32)
    popularity = rng.integers(0, 1000, size=n)
    dense = Recommender.from_matrix(B, popularity=popularity)
    files = {}
    for label, make in (("float32", lambda: dense), ("float16", lambda: dense.compress("float16")),
                        ("int8", lambda: dense.compress("int8")), ("pruned m=100", lambda: dense.prune(100))):
        path = os.path.join(folder, label.replace(" ", "_").replace("=", "") + ".laef")
        make().save(path)
        files[label] = path
    return files


def in_process(path: str, bodies: List[dict], calls: int) -> dict:
    """p50 of recommend_json (kernel + encoding) and of recommend_one_ids (kernel) on the same file."""
    from lae_fast import Recommender

    rec = Recommender.load(path)
    for b in bodies[:50]:
        rec.recommend_json(b["items"], b["n"])
    t_json, t_one = [], []
    for b in bodies[:calls]:
        t0 = time.perf_counter()
        rec.recommend_json(b["items"], b["n"])
        t1 = time.perf_counter()
        rec.recommend_one_ids(b["items"], b["n"])
        t_json.append(t1 - t0)
        t_one.append(time.perf_counter() - t1)
    return {"json_p50": float(np.median(t_json)) * 1e6, "ids_p50": float(np.median(t_one)) * 1e6}


def encoding_costs(path: str, bodies: List[dict], calls: int) -> dict:
    """The answer's encoding alone, on the same ranked results (µs p50): FastAPI's default (numpy
    ``.tolist()`` through ``jsonable_encoder`` and ``json.dumps``) against ``recommend_json``'s."""
    from fastapi.encoders import jsonable_encoder

    from lae_fast import Recommender
    from lae_fast.serving import _json_body

    rec = Recommender.load(path)
    st = rec._snap
    t_default, t_ours, t_rank = [], [], []
    for b in bodies[:calls]:
        t0 = time.perf_counter()
        idx, scores, n_unknown, cold = rec._one_ids(st, b["items"], b["n"], None, None, "ignore", True)
        t1 = time.perf_counter()
        ids = st.item_ids[idx]
        json.dumps(jsonable_encoder({"items": ids.tolist(), "scores": scores.tolist(), "n_unknown": n_unknown,
                                     "cold": cold})).encode()
        t2 = time.perf_counter()
        _json_body(st, idx, scores, n_unknown, cold, 6)
        t3 = time.perf_counter()
        t_rank.append(t1 - t0)
        t_default.append(t2 - t1)
        t_ours.append(t3 - t2)
    default = json.dumps({"items": ids.tolist(), "scores": scores.tolist(), "n_unknown": n_unknown, "cold": cold})
    return {"default": float(np.median(t_default)) * 1e6, "ours": float(np.median(t_ours)) * 1e6,
            "kernel": float(np.median(t_rank)) * 1e6, "default_bytes": len(default),
            "ours_bytes": len(_json_body(st, idx, scores, n_unknown, cold, 6))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=20_720)
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--output", default=None, help="write the section here instead of bench/RESULTS.md")
    parser.add_argument("--quick", action="store_true")
    # the client process
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-requests", help=argparse.SUPPRESS)
    parser.add_argument("--client-output", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--keep-bodies", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client_main(args)
    if args.quick:
        args.items, args.seconds, args.warmup, args.queries = 5_000, 1.5, 0.5, 500

    sys.path.insert(0, str(Path(__file__).parent))
    from _common import command_line, environment, publish

    from lae_fast import Recommender, _serve
    from lae_fast.compression import CompressedB

    n = args.items
    load_before = os.getloadavg()[0]
    rng = np.random.default_rng(1)
    lengths = rng.integers(10, 501, size=args.queries)
    bodies = [{"items": np.sort(rng.choice(n, size=int(L), replace=False)).tolist(), "n": N} for L in lengths]
    with tempfile.TemporaryDirectory(prefix="lae-bench-service-") as folder:
        requests_file = os.path.join(folder, "requests.json")
        with open(requests_file, "w") as fh:
            json.dump(bodies, fh)
        files = build_files(n, folder, bodies)
        sizes = {label: os.path.getsize(p) / 2 ** 20 for label, p in files.items()}
        rows, lib, mem, ready = [], {}, {}, {}
        for label, path in files.items():
            lib[label] = in_process(path, bodies, min(1000, len(bodies)))
            svc = Service(path)
            ready[label] = svc.ready_seconds
            try:
                for c in CONCURRENCY:
                    pids = svc.worker_pids()
                    cpu0 = cpu_seconds(pids)
                    res = run_client(svc.port, requests_file, c, args.seconds, args.warmup, keep_bodies=20)
                    s = summarize(res)
                    s["cpu_ms"] = (cpu_seconds(pids) - cpu0) / max(1, s["n"]) * 1e3  # warm-up requests too: an upper bound
                    rec = Recommender.load(path)
                    for q, body in res["bodies"].items():  # the service answers what the library answers
                        b = bodies[int(q)]
                        assert body == rec.recommend_json(b["items"], b["n"]).decode(), (label, q)
                    del rec  # unmapped: only the workers share the file when their memory is read
                    rows.append((label, c, s))
                    print(f"{label} c={c}: {s['rps']:,.0f} req/s p50 {s['p50']:.2f} ms p99 {s['p99']:.2f} ms "
                          f"failed {s['failed']} cpu {s['cpu_ms']:.2f} ms/req", flush=True)
                gc.collect()
                mem[label] = [memory_of(pid, path) for pid in svc.worker_pids()]
            finally:
                svc.stop()

        # -- the int8 file replaced under load, and a killed worker ---------------------------------
        path = files["int8"]
        svc = Service(path, reload_seconds=1.0)
        swap: Dict[str, float] = {}
        try:
            rec = Recommender.load(path)
            doubled = Recommender.from_matrix(CompressedB(rec._snap.packed.codes, rec._snap.packed.row_scale * 2,
                                                          rec._snap.packed.diagonal * 2), popularity=rec.popularity)
            new_path = path + ".new"
            doubled.save(new_path)
            del rec, doubled

            def replace_file(t0: float) -> None:
                time.sleep(args.warmup + args.seconds * 0.4)
                swap["at"] = time.perf_counter() - t0 - args.warmup
                os.replace(new_path, path)  # atomic: what model.save and Recommender.save do

            res_reload = run_client(svc.port, requests_file, 16, args.seconds * 2.5, args.warmup,
                                    during=replace_file)
            reload_health = svc.health()

            def kill_one_worker(t0: float) -> None:
                time.sleep(args.warmup + args.seconds * 0.4)
                swap["killed_at"] = time.perf_counter() - t0 - args.warmup
                os.kill(svc.worker_pids()[0], signal.SIGKILL)

            res_kill = run_client(svc.port, requests_file, 16, args.seconds * 2.5, args.warmup,
                                  during=kill_one_worker)
        finally:
            svc.stop()

        # -- async def vs a plain def in FastAPI's thread pool (int8) ---------------------------------
        pool_rows: Dict[tuple, list] = {}
        for _ in range(2):  # two rounds, in turn: the machine's load moves between runs
            for threadpool in (False, True):
                svc = Service(files["int8"], threadpool=threadpool)
                try:
                    for c in (1, 16):
                        pids = svc.worker_pids()
                        cpu0 = cpu_seconds(pids)
                        s = summarize(run_client(svc.port, requests_file, c, args.seconds, args.warmup))
                        s["cpu_ms"] = (cpu_seconds(pids) - cpu0) / max(1, s["n"]) * 1e3
                        kind = "def, thread pool" if threadpool else "async def"
                        pool_rows.setdefault((kind, c), []).append(s)
                        print(kind, c, s, flush=True)
                finally:
                    svc.stop()
        svc = Service(files["float32"], verify=False)
        ready_noverify = svc.ready_seconds
        svc.stop()
        # uvicorn's own --workers mode: its listening socket reaches asyncio with proto 0, so asyncio
        # never sets TCP_NODELAY on the connections (uvicorn issue #3149); uvloop sets it on every TCP
        # connection, gunicorn on its listening socket
        nodelay = {}
        for server in ("uvicorn-asyncio", "uvicorn-uvloop"):
            svc = Service(files["pruned m=100"], server=server)
            try:
                nodelay[server] = summarize(run_client(svc.port, requests_file, 1, args.seconds, args.warmup))
            finally:
                svc.stop()
        enc = encoding_costs(files["int8"], bodies, min(1000, len(bodies)))

    # -- report ---------------------------------------------------------------------------------------
    table = ["| B served | file MiB | connections | requests/s | p50 ms | p99 ms | failed | worker CPU ms / request "
             "| library p50 µs (kernel + JSON) | library share of p50 |", "|" + "---|" * 10]
    for label, c, s in rows:
        share = lib[label]["json_p50"] / (s["p50"] * 1e3)
        table.append(f"| {label} | {sizes[label]:,.0f} | {c} | **{s['rps']:,.0f}** | {s['p50']:.2f} | {s['p99']:.2f} "
                     f"| {s['failed']} | {s['cpu_ms']:.2f} | {lib[label]['json_p50']:,.0f} | {share:.0%} |")
    mem_rows = ["| B served | file MiB | worker | RSS MiB | PSS MiB | file pages: RSS / PSS MiB | workers ready in s |",
                "|" + "---|" * 7]
    for label, ms in mem.items():
        for k, m in enumerate(ms):
            mem_rows.append(f"| {label} | {sizes[label]:,.0f} | {k + 1} | {m['rss']:,.0f} | {m['pss']:,.0f} | "
                            f"{m['rss_file']:,.0f} / {m['pss_file']:,.0f} | {ready[label]:.1f} |")
    r = summarize(res_reload)
    t_rel = np.array([x[0] for x in res_reload["records"]])
    lat_rel = np.array([x[1] for x in res_reload["records"]]) * 1e3
    window = (t_rel >= swap["at"]) & (t_rel < swap["at"] + 2.0)
    k = summarize(res_kill)
    pool = "\n".join(f"| {kind} | {c} | " + " | ".join(" / ".join(fmt.format(s[key]) for s in runs) for key, fmt in
                                                    (("rps", "{:,.0f}"), ("p50", "{:.2f}"), ("p99", "{:.2f}"),
                                                     ("cpu_ms", "{:.2f}"))) + " |"
                     for (kind, c), runs in sorted(pool_rows.items(), key=lambda kv: (kv[0][1], kv[0][0])))
    body = (
        "## Web service: examples/lae_service.py behind gunicorn, 2 uvicorn workers\n\n"
        f"Command: `{command_line()}`\n\n{environment()}"
        f"- machine load average (1 min) {load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end, "
        f"on {os.cpu_count()} CPUs shared by the service, the client process and other jobs\n"
        f"- B: random float32 {n:,}×{n:,} and its copies (float16 / int8: `Recommender.compress`, decode loops "
        f"{_serve.simd_level()}; pruned: m=100 by |value|), one file each, memory-mapped by the workers; "
        f"{len(bodies):,} queries: histories of 10–500 item ids (uniform), N={N}\n"
        "- `gunicorn lae_service:app --chdir examples -w 2 -k uvicorn_worker.UvicornWorker`, "
        "OMP_NUM_THREADS=1, the file checked (SHA-256) at each worker's start; client: one process, "
        "keep-alive HTTP/1.1 connections (asyncio), each sending its next request when the answer came; "
        f"{args.seconds:g} s measured per row after {args.warmup:g} s of warm-up; answers compared byte for "
        "byte with `Recommender.recommend_json` in this process (20 per row)\n"
        "- *library p50*: `recommend_json` (ranking + JSON) in this process on the same file and queries, "
        "no HTTP; *library share*: that over the request's p50; *worker CPU*: user + system time of both "
        "workers over the requests served (warm-up included)\n\n"
        + "\n".join(table) + "\n\n"
        "Memory of each worker after its runs (`/proc/PID/smaps`): PSS charges each shared page to the "
        "processes mapping it in equal parts, so two workers that both touched all of B are charged half "
        "of it each:\n\n" + "\n".join(mem_rows) + "\n\n"
        f"Workers ready (both answering) {ready['float32']:.1f} s after the start with the checksum of the "
        f"float32 file, {ready_noverify:.1f} s with `LAE_FAST_VERIFY=0` (the checksum also brings the file "
        "into the page cache).\n\n"
        f"**Model file replaced under load** (int8, 16 connections, {args.seconds * 2.5:g} s): the file was "
        f"renamed over at t = {swap['at']:.1f} s; the workers' watcher (every 1 s) swapped it in. "
        f"{r['n']:,} requests, **{r['failed']} failed**; p50 {r['p50']:.2f} ms, p99 {r['p99']:.2f} ms overall, "
        f"p99 {np.percentile(lat_rel[window], 99):.2f} ms in the 2 s after the rename; "
        f"reloads seen by the workers: {sorted(h['reloads'] for h in reload_health)}.\n\n"
        f"**A worker killed under load** (SIGKILL at t = {swap['killed_at']:.1f} s, 16 connections, the "
        f"client reconnecting): {k['n']:,} requests, {k['failed']} failed "
        + (f"(first: `{res_kill['failures'][0][1][:80]}`)" if res_kill["failures"] else "")
        + "; gunicorn started a new worker.\n\n"
        "The endpoint as `async def` (the recipe) and as a plain `def`, which FastAPI runs in its "
        "thread pool (int8; two rounds, run in turn: round 1 / round 2):\n\n| endpoint | connections | requests/s | p50 ms | p99 ms | worker CPU ms / request |\n"
        "|---|---|---|---|---|---|\n" + pool + "\n\n"
        "uvicorn's own `--workers 2` mode (pruned file, one connection, keep-alive): with the asyncio loop "
        f"p50 {nodelay['uvicorn-asyncio']['p50']:.2f} ms ({nodelay['uvicorn-asyncio']['rps']:,.0f} requests/s), "
        f"with uvloop p50 {nodelay['uvicorn-uvloop']['p50']:.2f} ms ({nodelay['uvicorn-uvloop']['rps']:,.0f} "
        "requests/s): without TCP_NODELAY each answer waits for the client's delayed ACK.\n\n"
        f"Encoding one answer (int8 file, N={N}, p50 over {min(1000, len(bodies)):,} queries): FastAPI's default "
        f"(`.tolist()`, `jsonable_encoder`, `json.dumps`) {enc['default']:.1f} µs for {enc['default_bytes']} "
        f"bytes; `recommend_json`'s {enc['ours']:.1f} µs for {enc['ours_bytes']} bytes; the ranking itself "
        f"{enc['kernel']:.0f} µs.\n"
    )
    publish("bench_service", body, args.output)


if __name__ == "__main__":
    main()
