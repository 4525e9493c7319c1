"""The bundle contract of docs/bundle-format.md that the apps code against: tokenizer.json,
golden.json version 2, embedding_space."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
from export_fixtures import LABEL_SETS, LOGIT_SCALE, demo_captions, shared_bundle, train_tiny_tokenizer
from PIL import Image
from tokenizers import Tokenizer

from compress.bundle import load_bundle
from compress.bundle.manifest import embedding_space
from compress.bundle.preprocess import image_input
from compress.bundle.tokenizer_json import tokenizer_json, write_tokenizer_json
from compress.errors import CompressError

ADVERSARIAL = [
    "",
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "a  b",
    "  leading",
    "trailing  ",
    " both ",
    "tab\there",
    "new\nline\r\n",
    "🙂",
    "🐱🐶🚀✨ emoji 🙂!",
    "👨‍👩‍👧 family (ZWJ)",
    "龘靐齉 unseen CJK",
    "罕见的字：龘",
    "0123456789",
    "3.14159 and 2026-12-01",
    "x1y2z3",
    "Mixed 中文 and English 混合",
    "一个 red 圆形 and 两个 blue squares",
    "ａｂｃ full width",
    "é composed, e\u0301 combining",
    "Ünïcödé ñ ß",
    "русский текст",
    "عربى",
    "▁literal▁marker",
    "x▁▁y",
    "UPPER lower MiXeD",
    "a" * 300,
    "一" * 120,
    "punctuation!?.,;:'\"()[]{}",
    "\u200b zero width",
    "\u3000ideographic space",
    "emoji at end 🙂",
]
# Hugging Face's Unigram matches the literal text of a control or byte piece as that piece, where
# SentencePiece spells it out; documented in compress.bundle.tokenizer_json and docs/bundle-format.md.
CORNERS = ["<s>", "</s> end", "<unk>", "<pad>", "<0x41>"]


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tokenizer")
    model = train_tiny_tokenizer(folder)
    return model, write_tokenizer_json(model, folder / "tokenizer.json")


def _both(tokenizer_files):
    model, converted = tokenizer_files
    return spm.SentencePieceProcessor(model_file=str(model)), Tokenizer.from_file(str(converted))


def test_tokenizer_json_encodes_exactly_like_sentencepiece(tokenizer_files):
    sp, hf = _both(tokenizer_files)
    texts = demo_captions(400) + ADVERSARIAL
    differing = [t for t in texts if hf.encode(t, add_special_tokens=False).ids != sp.encode(t, out_type=int)]
    assert differing == []
    assert len(texts) >= 400 and sp.encode("🙂", out_type=str)[-1].startswith("<0x")  # byte fallback is exercised


def test_tokenizer_json_documented_corner_control_and_byte_piece_text(tokenizer_files):
    sp, hf = _both(tokenizer_files)
    for text in CORNERS:
        assert hf.encode(text, add_special_tokens=False).ids != sp.encode(text, out_type=int), text


def test_tokenizer_json_gives_apps_every_piece_type(tokenizer_files):
    model, converted = tokenizer_files
    content = json.loads(converted.read_text(encoding="utf-8"))
    sp = spm.SentencePieceProcessor(model_file=str(model))
    vocab = content["model"]["vocab"]
    assert content["model"]["type"] == "Unigram" and content["model"]["byte_fallback"] is True
    assert len(vocab) == sp.get_piece_size()
    assert all(piece == sp.id_to_piece(i) and score == pytest.approx(sp.get_score(i)) for i, (piece, score) in enumerate(vocab))
    assert content["model"]["unk_id"] == 1 == sp.unk_id()
    special = {token["id"]: token["content"] for token in content["added_tokens"] if token["special"]}
    assert special == {0: "<pad>", 1: "<unk>", 2: "<s>", 3: "</s>"}
    assert all(sp.is_control(i) or sp.is_unknown(i) for i in special)
    byte_ids = [i for i, (piece, _) in enumerate(vocab) if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">")]
    assert len(byte_ids) == 256 and all(sp.is_byte(i) for i in byte_ids)
    normal = set(range(len(vocab))) - set(special) - set(byte_ids)
    assert not any(sp.is_control(i) or sp.is_byte(i) or sp.is_unknown(i) for i in normal)
    assert content["normalizer"]["normalizers"][0] == {"type": "Prepend", "prepend": "\u2581"}


def test_tokenizer_json_refuses_a_model_it_cannot_express(tmp_path):
    captions = demo_captions(200)
    path = tmp_path / "nfkc.model"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(captions),
        model_prefix=str(path.with_suffix("")),
        vocab_size=200,
        byte_fallback=False,
        minloglevel=2,
        num_threads=1,
    )
    with pytest.raises(
        CompressError,
        match=r"nfkc\.model: cannot be written as tokenizer\.json: its normalisation rule is "
        r"'nmt_nfkc'.*removes extra whitespace.*no byte fallback",
    ):
        tokenizer_json(path.read_bytes(), str(path))
    with pytest.raises(CompressError, match="not a SentencePiece model"):
        tokenizer_json(b"not a model", "broken.model")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return shared_bundle(tmp_path_factory)[0]


def test_bundle_tokenizer_json_matches_on_every_golden_text(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    golden = json.loads((bundle / "golden.json").read_text(encoding="utf-8"))
    hf = Tokenizer.from_file(str(bundle / manifest["text"]["tokenizer_json"]))
    text = manifest["text"]
    for item in golden["texts"]:
        pieces = hf.encode(item["text"], add_special_tokens=False).ids[: text["max_length"] - 2]
        row = [text["bos_id"], *pieces, text["eos_id"]]
        assert item["ids"] == row + [text["pad_id"]] * (text["max_length"] - len(row)), item["text"]


def test_golden_v2_holds_what_the_apps_check(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    golden = json.loads((bundle / "golden.json").read_text(encoding="utf-8"))
    assert golden["format"] == "compress-golden" and golden["version"] == 2
    texts = golden["texts"]
    assert len(texts) >= 10 and {t["lang"] for t in texts} == {"en", "zh"}
    by_text = {t["text"]: t for t in texts}
    assert "" in by_text and by_text[""]["ids"][:3] == [2, 3, 0]
    assert any(
        any("\u4e00" <= c <= "\u9fff" for c in t) and any(c.isascii() and c.isalpha() for c in t) for t in by_text
    )  # mixed
    assert any(any(c.isdigit() for c in t) for t in by_text) and any(any(ord(c) > 0x1F000 for c in t) for t in by_text)
    sp = spm.SentencePieceProcessor(model_file=str(bundle / "tokenizer.model"))
    assert any(len(sp.encode(t)) > manifest["text"]["max_length"] for t in by_text)  # one is truncated
    for item in texts:
        assert len(item["ids"]) == manifest["text"]["max_length"] and item["ids"][0] == 2 and 3 in item["ids"]
        for key in ("embedding", "embedding_int8"):
            assert len(item[key]) == manifest["embed_dim"] and np.linalg.norm(item[key]) == pytest.approx(1, abs=1e-4)
    size = manifest["image"]["size"]
    assert [image["file"] for image in golden["images"]] == ["golden/image_0.png", "golden/image_1.png"]
    for image in golden["images"]:
        pixels = np.fromfile(bundle / image["pixels"], dtype="<f4")
        assert image["input_shape"] == [1, 3, size, size] and pixels.size == 3 * size * size
        assert np.array_equal(
            pixels.reshape(image["input_shape"]), image_input(Image.open(bundle / image["file"]), manifest["image"])
        )
        assert set(image["top5"]) == {f"{s}.{lang}" for s in LABEL_SETS for lang in ("en", "zh")}
        for key, top in image["top5"].items():
            labels = json.loads((bundle / f"labels/{key}.json").read_text(encoding="utf-8"))
            cosine = np.asarray(labels["embeddings"]) @ np.asarray(image["embedding"])
            probability = np.exp(LOGIT_SCALE * (cosine - cosine.max()))
            probability /= probability.sum()
            assert [row["index"] for row in top] == list(np.argsort(-probability, kind="stable")[:5])
            assert [row["class"] for row in top] == [labels["classnames"][row["index"]] for row in top]
    assert golden["images"][1]["size"] != [size, size]  # the second picture exercises resize and crop


def test_embedding_space_is_the_documented_digest(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    listed = {entry["path"]: entry["sha256"] for entry in manifest["files"]}

    def digest(file):
        if file in listed:
            return listed[file]
        inside = {p: d for p, d in listed.items() if p.startswith(file + "/")}
        return hashlib.sha256(json.dumps(inside, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    identity = {
        "embed_dim": manifest["embed_dim"],
        "image": manifest["image"],
        "image_models": {m["file"]: digest(m["file"]) for m in manifest["models"] if m["tower"] == "image"},
    }
    expected = hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert manifest["embedding_space"] == expected == embedding_space(manifest)
    assert load_bundle(bundle).manifest["embedding_space"] == expected
    changed = json.loads(json.dumps(manifest))
    changed["image"]["size"] += 1
    assert embedding_space(changed) != expected
    text_changed = json.loads(json.dumps(manifest))
    text_changed["files"] = [dict(e, sha256="0" * 64) if e["path"].startswith("text_") else e for e in manifest["files"]]
    assert embedding_space(text_changed) == expected  # only the image side is the index's identity
