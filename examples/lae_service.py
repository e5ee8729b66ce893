"""A recommendation web service on lae_fast.Recommender (FastAPI, ASGI): the tested recipe.

Each worker process loads the model file once, at startup (not at import: see
docs/SERVING.md, "Deploying behind a web server"), memory-mapped, so all workers
share one copy of B in the page cache. The endpoint is ``async def`` and calls the
GIL-free kernel directly; the answer is the JSON body ``Recommender.recommend_json``
writes (no generic encoder of numpy arrays). Each worker checks the file every
``LAE_FAST_RELOAD_SECONDS`` and swaps in a replaced one between requests.

Run it from the repository root (``pip install 'lae-fast[serve]'``)::

    lae-fast compress ease.lae --dtype int8 -o ease-i8.lae
    LAE_FAST_MODEL=ease-i8.lae OMP_NUM_THREADS=1 gunicorn lae_service:app --chdir examples \\
        -w 2 -k uvicorn_worker.UvicornWorker -b 127.0.0.1:8000
    curl -s 127.0.0.1:8000/recommend -H 'content-type: application/json' -d '{"items": [1, 2, 3], "n": 5}'

Settings (environment variables):

- ``LAE_FAST_MODEL``: the model or serving file (required);
- ``LAE_FAST_MAX_N`` (default 100): the largest ``n`` a request may ask for;
- ``LAE_FAST_MAX_HISTORY`` (default 500): the most history items a request may send (a
  dense B reads one row per item: see the history cap in docs/SERVING.md);
- ``LAE_FAST_RELOAD_SECONDS`` (default 5, 0 turns it off): how often each worker looks
  for a replaced model file;
- ``LAE_FAST_VERIFY`` (default 1): check the file's checksums at (re)load.

API:

- ``POST /recommend`` with ``{"items": [ids...], "n": 20, "exclude": [ids...]}``: the
  ``n`` best items the history does not hold, as ``{"items": [...], "scores": [...],
  "n_unknown": k, "cold": false}`` (``cold``: no item of the history is known, so the
  most popular items are returned; ``n_unknown``: history ids the model does not know);
- ``GET /health``: the worker's pid and what it serves;
- ``POST /admin/reload``: re-open the model file now, in this worker.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
from typing import AsyncIterator, List, Union

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from lae_fast import Recommender

MAX_N = int(os.environ.get("LAE_FAST_MAX_N", "100"))
MAX_HISTORY = int(os.environ.get("LAE_FAST_MAX_HISTORY", "500"))
RELOAD_SECONDS = float(os.environ.get("LAE_FAST_RELOAD_SECONDS", "5"))
VERIFY = os.environ.get("LAE_FAST_VERIFY", "1") != "0"

ItemId = Union[StrictInt, StrictStr]


class Query(BaseModel):
    """One request: a history of item ids, how many items, and items never to return."""

    model_config = ConfigDict(extra="forbid")
    items: List[ItemId] = Field(default_factory=list, max_length=MAX_HISTORY)
    n: int = Field(20, ge=1, le=MAX_N)
    exclude: List[ItemId] = Field(default_factory=list, max_length=MAX_HISTORY)


async def watch_model_file(app: FastAPI) -> None:
    """Swap in a replaced model file; the checksum pass runs in a thread (it releases the GIL)."""
    while True:
        await asyncio.sleep(RELOAD_SECONDS)
        try:
            if await asyncio.to_thread(app.state.rec.reload, verify=VERIFY):
                app.state.reloads += 1
        except Exception as exc:  # noqa: BLE001 - a bad or missing file: keep serving the old model
            print(f"lae_service[{os.getpid()}]: reload failed, still serving the old model: {exc}", flush=True)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    path = os.environ.get("LAE_FAST_MODEL")
    if not path:
        raise RuntimeError("set LAE_FAST_MODEL to the model file to serve")
    app.state.rec = Recommender.load(path, verify=VERIFY)  # once per worker process
    app.state.reloads = 0
    watcher = asyncio.create_task(watch_model_file(app)) if RELOAD_SECONDS > 0 else None
    yield
    if watcher is not None:
        watcher.cancel()


app = FastAPI(title="lae-fast recommendations", lifespan=lifespan)


def answer(query: Query, request: Request) -> Response:
    body = request.app.state.rec.recommend_json(query.items, query.n, filter_items=query.exclude or None)
    return Response(content=body, media_type="application/json")


async def recommend(query: Query, request: Request) -> Response:
    # async and direct: the kernel holds this worker's event loop for its run (~0.1-1 ms,
    # bounded by MAX_HISTORY) and saves the hand-over to a thread; one worker per core
    # gives the parallelism
    return answer(query, request)


def recommend_in_thread_pool(query: Query, request: Request) -> Response:
    return answer(query, request)


# LAE_FAST_THREADPOOL=1: the plain-def endpoint FastAPI runs in its thread pool, for comparison
# (bench/bench_service.py measures both)
app.post("/recommend")(recommend_in_thread_pool if os.environ.get("LAE_FAST_THREADPOOL") == "1" else recommend)


@app.get("/health")
async def health(request: Request) -> dict:
    rec = request.app.state.rec
    return {"pid": os.getpid(), "n_items": rec.n_items, "kind": rec.kind, "dtype": rec.dtype,
            "path": rec.path, "reloads": request.app.state.reloads}


@app.post("/admin/reload")
async def reload_now(request: Request) -> dict:
    reloaded = await asyncio.to_thread(request.app.state.rec.reload, verify=VERIFY)
    request.app.state.reloads += int(reloaded)
    return {"pid": os.getpid(), "reloaded": reloaded}
