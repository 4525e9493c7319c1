"""The student's SentencePiece tokenizer: round trips, truncation, coverage, reloading, bad input."""

from __future__ import annotations

import copy
import io
import json
import pickle

import pytest
import sentencepiece as spm
import torch

from compress.errors import CompressError
from students.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, SentencePieceTokenizer, train_tokenizer

COLOURS = [("red", "红色"), ("blue", "蓝色"), ("green", "绿色"), ("yellow", "黄色"), ("purple", "紫色")]
SHAPES = [("circle", "圆形"), ("square", "正方形"), ("triangle", "三角形"), ("star", "星形"), ("cross", "十字形")]
RARE_CHINESE = "鹦鹉麒麟龘"  # each appears once: still must get a piece of its own


def corpus() -> list[str]:
    captions = []
    for colour_en, colour_zh in COLOURS:
        for shape_en, shape_zh in SHAPES:
            captions.append(f"A photo of a {colour_en} {shape_en} at the top.")
            captions.append(f"一个{colour_zh}的{shape_zh}在上面。")
            captions.append(f"Two {colour_en} {shape_en}s, 2 of them.")
    captions.append(f"一只{RARE_CHINESE}。")
    return captions


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> SentencePieceTokenizer:
    return train_tokenizer(corpus(), tmp_path_factory.mktemp("tok") / "tokenizer.model", vocab_size=400)


TEXTS = {
    "english": "A photo of a red circle at the top.",
    "chinese": "一个红色的圆形在上面。",
    "mixed": "A red 圆形, 在上面 and a blue star.",
    "emoji": "a red circle 😀🐱 next to a star ✨",
    "unseen_chinese": "一只熊猫在吃竹子",
    "spaces": "  two   spaces  ",
    "empty": "",
}


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_round_trip_and_row_layout(tokenizer, tmp_path, name):
    text = TEXTS[name]
    ids = tokenizer.encode([text], max_length=64)
    assert ids.shape == (1, 64) and ids.dtype == torch.int64
    row = ids[0].tolist()
    length = int((ids != tokenizer.pad_id).sum())
    assert row[0] == BOS_ID and row[length - 1] == EOS_ID
    assert all(i == PAD_ID for i in row[length:])
    assert UNK_ID not in row  # byte fallback: nothing is ever unknown
    assert tokenizer.decode(ids[0]) == text
    reloaded = SentencePieceTokenizer.from_file(tokenizer.save(tmp_path))
    assert torch.equal(reloaded.encode([text], max_length=64), ids)


def test_copies_and_pickles_encode_the_same(tokenizer):
    text = [TEXTS["mixed"]]
    for other in (copy.deepcopy(tokenizer), pickle.loads(pickle.dumps(tokenizer))):
        assert other.digest == tokenizer.digest
        assert torch.equal(other.encode(text, 32), tokenizer.encode(text, 32))


def test_empty_string_is_bos_eos(tokenizer):
    assert tokenizer.encode([""], max_length=4).tolist() == [[BOS_ID, EOS_ID, PAD_ID, PAD_ID]]


def test_long_text_is_truncated_and_still_ends_with_eos(tokenizer):
    text = " ".join(["A photo of a red circle and 一个蓝色的三角形"] * 30)
    ids = tokenizer.encode([text, "red"], max_length=16)
    assert ids.shape == (2, 16)
    assert ids[0, 0] == BOS_ID and ids[0, -1] == EOS_ID and (ids[0] != PAD_ID).all()
    assert text.startswith(tokenizer.decode(ids[0]))
    assert tokenizer.decode(ids[1]) == "red"


def test_attention_mask_counts_pieces(tokenizer):
    texts = ["red", "一个红色的圆形在上面。", ""]
    ids = tokenizer.encode(texts, max_length=32)
    lengths = (ids != tokenizer.pad_id).sum(dim=1).tolist()
    assert lengths == [len(tokenizer.pieces(t)) + 2 for t in texts]


def test_every_chinese_character_of_the_corpus_is_a_piece(tokenizer):
    characters = {ch for caption in corpus() for ch in caption if "\u4e00" <= ch <= "\u9fff"}
    assert set(RARE_CHINESE) <= characters
    missing = [ch for ch in sorted(characters) if tokenizer.piece_to_id(ch) == tokenizer.unk_id]
    assert missing == []
    # a seen character never falls back to bytes; an unseen one does, and still round-trips
    assert not any(tokenizer.id_to_piece(i).startswith("<0x") for i in tokenizer.pieces(RARE_CHINESE))
    assert any(tokenizer.id_to_piece(i).startswith("<0x") for i in tokenizer.pieces("熊猫"))


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_training_is_deterministic_and_vocab_is_clamped(tmp_path, model_type):
    first = train_tokenizer(corpus(), tmp_path / "a", vocab_size=8000, model_type=model_type)
    second = train_tokenizer(iter(corpus()), tmp_path / "b" / "tok.model", vocab_size=8000, model_type=model_type)
    assert (tmp_path / "a" / "tokenizer.model").is_file() and (tmp_path / "b" / "tok.model").is_file()
    assert first.digest == second.digest
    assert 260 < first.vocab_size < 8000  # the corpus cannot support 8000 pieces: the largest it can
    assert first.decode(first.encode([TEXTS["mixed"]], 64)[0]) == TEXTS["mixed"]


def test_bad_training_input(tmp_path):
    with pytest.raises(CompressError, match="model_type"):
        train_tokenizer(corpus(), tmp_path, model_type="wordpiece")
    with pytest.raises(CompressError, match="no captions"):
        train_tokenizer(["", "  "], tmp_path)
    with pytest.raises(CompressError, match="tokenizer training failed"):
        train_tokenizer(corpus(), tmp_path, vocab_size=50)  # below the 256 byte pieces


def test_bad_files_are_refused(tmp_path, tokenizer):
    with pytest.raises(CompressError, match="no such tokenizer file"):
        SentencePieceTokenizer.from_file(tmp_path / "absent.model")
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(CompressError, match="garbage.model: not a SentencePiece model"):
        SentencePieceTokenizer.from_file(garbage)
    # a valid SentencePiece model with the library's default ids (unk 0, bos 1, eos 2, no pad)
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus()), model_writer=buffer, vocab_size=60, minloglevel=2)
    other = tmp_path / "other.model"
    other.write_bytes(buffer.getvalue())
    with pytest.raises(CompressError, match="other.model: special token ids"):
        SentencePieceTokenizer.from_file(other)
    with pytest.raises(CompressError, match="max_length"):
        tokenizer.encode(["red"], max_length=1)
    with pytest.raises(CompressError, match="list of texts"):
        tokenizer.encode("red", max_length=8)


def test_the_default_tokenizer_trains_on_its_corpus_data_spec_once(tmp_path, monkeypatch):
    """`default_tokenizer` opens its corpus through the data-source registry; here a manifest instead of the demo."""
    from PIL import Image

    from students.tokenizer import DEFAULT_CORPUS, default_tokenizer

    assert DEFAULT_CORPUS == "demo:train"
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    Image.new("RGB", (8, 8), "red").save(tmp_path / "red.png")
    lines = [
        {"image": "red.png", "caption": text, "lang": "zh" if any(ord(c) > 127 for c in text) else "en"} for text in corpus()
    ]
    manifest = tmp_path / "captions.jsonl"
    manifest.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines), encoding="utf-8")
    first = default_tokenizer(vocab_size=400, corpus=f"manifest:{manifest}")
    assert str(tmp_path / "cache" / "tokenizers") in first.source
    assert first.decode(first.encode([RARE_CHINESE], 16)[0].tolist()) == RARE_CHINESE
    again = default_tokenizer(vocab_size=400, corpus=str(manifest))  # the same corpus unprefixed: read from the cache
    assert again.digest == first.digest and again.source == first.source
