"""The web-service recipe (examples/lae_service.py) run as documented: gunicorn, two uvicorn workers,
on 127.0.0.1, driven concurrently by a real HTTP client; answers checked against model.recommend.

Bounded: a few hundred requests, every wait capped; the server is stopped whatever happens."""
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

httpx = pytest.importorskip("httpx")  # the test extra installs it; the serve extra the rest
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn_worker")
pytest.importorskip("gunicorn")

from lae_fast import EASE, RLAE, Recommender  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HOST = "127.0.0.1"
MAX_N, MAX_HISTORY = 50, 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    rng = np.random.default_rng(11)
    X = sp.csr_matrix((rng.random((500, 200)) < np.linspace(0.005, 0.12, 200)).astype(np.float32))
    ids = np.array([f"tt{i:05d}" for i in range(200)])
    from lae_fast.data import Interactions

    inter = Interactions.from_matrix(X, item_ids=ids)
    a, b = EASE(l2=20.0).fit(inter), RLAE(l2=40.0, xi=0.3).fit(inter)
    folder = tmp_path_factory.mktemp("service")
    return a, b, X, ids, folder


def expected(model, ids, history, n, exclude=()):
    """What the service must answer: model.recommend on the known items, cold users by popularity."""
    pos = {v: i for i, v in enumerate(ids)}
    known = sorted({pos[h] for h in history if h in pos})
    row = sp.csr_matrix((np.ones(len(known)), (np.zeros(len(known), int), known)), shape=(1, len(ids)))
    f = [pos[e] for e in exclude if e in pos] or None
    got, scores, cold = model.recommend(row, n, filter_items=f, return_cold=True)
    keep = got[0] >= 0
    return ids[got[0][keep]].tolist(), scores[0][keep], bool(cold[0]), sum(h not in pos for h in history)


@pytest.fixture(scope="module")
def server(models):
    a, _, _, _, folder = models
    path = folder / "live.laef"
    Recommender(a).save(path)
    port = free_port()
    env = dict(os.environ, LAE_FAST_MODEL=str(path), LAE_FAST_MAX_N=str(MAX_N),
               LAE_FAST_MAX_HISTORY=str(MAX_HISTORY), LAE_FAST_RELOAD_SECONDS="0.2", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "gunicorn", "lae_service:app", "--chdir", str(EXAMPLES), "-w", "2",
           "-k", "uvicorn_worker.UvicornWorker", "-b", f"{HOST}:{port}", "--graceful-timeout", "5",
           "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        pids = set()
        while len(pids) < 2:  # both workers up (each loads the model at startup)
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the service did not start in 60 s"
            try:
                with httpx.Client(timeout=2) as c:  # a new connection: may reach either worker
                    pids.add(c.get(url + "/health").json()["pid"])
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, path, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def random_query(rng, ids):
    L = int(rng.integers(0, MAX_HISTORY + 1))
    hist = [str(v) for v in rng.choice(ids, size=L)]
    if rng.random() < 0.2:
        hist = hist[:3] + ["unknown-item"]
    if rng.random() < 0.1:
        hist = []
    n = int(rng.integers(1, MAX_N + 1))
    exclude = [str(v) for v in rng.choice(ids, size=3)] if rng.random() < 0.3 else []
    return hist, n, exclude


async def drive(url, queries, concurrency):
    """``concurrency`` keep-alive connections sending ``queries``; the responses in order."""
    out = [None] * len(queries)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one(i, q):
            async with sem:
                hist, n, exclude = q
                body = {"items": hist, "n": n}
                if exclude:
                    body["exclude"] = exclude
                r = await client.post("/recommend", json=body)
                out[i] = (r.status_code, r.content)

        await asyncio.gather(*[one(i, q) for i, q in enumerate(queries)])
    return out


def check(model, ids, q, status, content):
    assert status == 200, content
    got = json.loads(content)
    items, scores, cold, n_unknown = expected(model, ids, *q)
    assert got["items"] == items and got["cold"] is cold and got["n_unknown"] == n_unknown
    np.testing.assert_allclose(got["scores"], scores, rtol=5e-6)  # 6 significant digits


def test_concurrent_answers_equal_model_recommend(server, models):
    url, _, _ = server
    a, _, _, ids, _ = models
    rng = np.random.default_rng(0)
    queries = [random_query(rng, ids) for _ in range(300)]
    queries[0] = ([], 5, [])  # a cold user
    t0 = time.monotonic()
    answers = asyncio.run(drive(url, queries, concurrency=16))
    assert time.monotonic() - t0 < 60
    for q, (status, content) in zip(queries, answers):
        check(a, ids, q, status, content)
    assert json.loads(answers[0][1])["cold"] is True


@pytest.mark.parametrize("body, where", [
    ({"items": ["tt00001"], "n": 0}, "n"),
    ({"items": ["tt00001"], "n": MAX_N + 1}, "n"),
    ({"items": ["tt00001"] * (MAX_HISTORY + 1)}, "items"),
    ({"items": [1.5]}, "items"),
    ({"items": [{"id": 1}]}, "items"),
    ({"items": "tt00001"}, "items"),
    ({"items": [], "k": 3}, "k"),
    ({"items": [], "exclude": [None]}, "exclude"),
])
def test_bad_requests_are_refused_with_422(server, body, where):
    url, _, _ = server
    r = httpx.post(url + "/recommend", json=body, timeout=10)
    assert r.status_code == 422
    assert any(where in [str(p) for p in e["loc"]] for e in r.json()["detail"])


def test_malformed_json_is_refused(server):
    url, _, _ = server
    r = httpx.post(url + "/recommend", content=b'{"items": [', headers={"content-type": "application/json"},
                   timeout=10)
    assert r.status_code == 422


def test_a_replaced_model_file_is_served_without_a_failed_request(server, models):
    """Under 8 concurrent connections, the file is replaced atomically: every answer is model A's or
    model B's, none fails, and every worker moves to B within seconds."""
    url, path, _ = server
    a, b, _, ids, _ = models
    rng = np.random.default_rng(1)
    queries = [random_query(rng, ids) for _ in range(60)]
    refs = [[expected(m, ids, *q) for q in queries] for m in (a, b)]

    def which(q_index, content):
        got = json.loads(content)
        hits = [k for k in (0, 1) if got["items"] == refs[k][q_index][0]
                and np.allclose(got["scores"], refs[k][q_index][1], rtol=5e-6)]
        return hits

    before = asyncio.run(drive(url, queries, 8))
    assert all(s == 200 and 0 in which(i, c) for i, (s, c) in enumerate(before))
    b.save(path)  # atomic: a temporary file renamed over the path
    deadline = time.monotonic() + 30
    moved = False
    while time.monotonic() < deadline and not moved:
        answers = asyncio.run(drive(url, queries, 8))
        for i, (status, content) in enumerate(answers):
            assert status == 200, content
            assert which(i, content), f"query {i}: an answer from neither model"
        moved = all(1 in which(i, c) for i, (_, c) in enumerate(answers))
    assert moved, "the workers did not pick up the new file in 30 s"
    reloads = {}
    while len(reloads) < 2 and time.monotonic() < deadline + 30:  # ask both workers
        with httpx.Client(timeout=5) as c:  # a new connection: may reach either worker
            health = c.get(url + "/health").json()
        reloads[health["pid"]] = health["reloads"]
    assert len(reloads) == 2 and all(k >= 1 for k in reloads.values()), reloads
