"""`tokenizer.json`: the student's SentencePiece Unigram model as a Hugging Face `tokenizers` file.

Apps without a protobuf library read this instead of `tokenizer.model`. It is built from the
model proto (pieces with their scores and types) and encodes like SentencePiece does with the
student's options: identity normalisation, spaces become `▁` and one `▁` is prepended, Unigram
best segmentation over the whole string, unknown characters as `<0xXX>` byte pieces.

Piece types, as an app reads them from this file alone: `model.unk_id` is the unknown piece;
`added_tokens` with `special: true` are the control pieces (pad, bos, eos) and the unknown one;
`added_tokens` with `special: false` are user-defined pieces; with `model.byte_fallback` the 256
pieces `<0x00>`..`<0xFF>` are the byte pieces; every other vocabulary entry is a normal piece.
Only normal and user-defined pieces ever match text.

One corner differs from SentencePiece: Hugging Face's Unigram matches the literal text of a
control or byte piece (`<s>`, `</s>`, `<pad>`, `<unk>`, `<0x41>`) as that one piece, where
SentencePiece spells it out character by character. The bundle's golden texts avoid it.
"""

from __future__ import annotations

import json
from pathlib import Path

from compress.errors import CompressError

SPACE = "\u2581"  # ▁, SentencePiece's visible space
# sentencepiece_model.proto ModelProto.SentencePiece.Type
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM = 1


def _model_proto(model_bytes: bytes, source: str):
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    try:
        proto.ParseFromString(model_bytes)
    except Exception as exc:  # protobuf's DecodeError
        raise CompressError(f"{source}: not a SentencePiece model ({exc})") from None
    return proto


def _check_convertible(proto, source: str) -> None:
    spec, normalizer = proto.trainer_spec, proto.normalizer_spec
    problems = []
    if spec.model_type != UNIGRAM:
        problems.append("it is not a Unigram model")
    if normalizer.name != "identity" or normalizer.precompiled_charsmap:
        problems.append(f"its normalisation rule is {normalizer.name!r}, not identity")
    if normalizer.remove_extra_whitespaces:
        problems.append("it removes extra whitespace")
    if not normalizer.escape_whitespaces or not normalizer.add_dummy_prefix:
        problems.append("it does not escape spaces as ▁ with a prepended ▁")
    if spec.treat_whitespace_as_suffix:
        problems.append("it puts ▁ after words")
    if not spec.byte_fallback:
        problems.append("it has no byte fallback")
    if any(piece.type == UNUSED for piece in proto.pieces):
        problems.append("it has unused pieces, which Hugging Face's Unigram would match")
    if problems:
        raise CompressError(f"{source}: cannot be written as tokenizer.json: " + "; ".join(problems))


def tokenizer_json(model_bytes: bytes, source: str = "tokenizer.model") -> dict:
    """The `tokenizer.json` object for a serialised SentencePiece Unigram model."""
    proto = _model_proto(model_bytes, source)
    _check_convertible(proto, source)
    unk_ids = [i for i, piece in enumerate(proto.pieces) if piece.type == UNKNOWN]
    if len(unk_ids) != 1:
        raise CompressError(f"{source}: needs exactly one unknown piece, has {len(unk_ids)}")
    added = [
        {
            "id": i,
            "content": piece.piece,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": piece.type != USER_DEFINED,
        }
        for i, piece in enumerate(proto.pieces)
        if piece.type in (UNKNOWN, CONTROL, USER_DEFINED)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": SPACE},
                {"type": "Replace", "pattern": {"String": " "}, "content": SPACE},
            ],
        },
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": SPACE}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        },
        "model": {
            "type": "Unigram",
            "unk_id": unk_ids[0],
            "byte_fallback": True,
            "vocab": [[piece.piece, float(piece.score)] for piece in proto.pieces],
        },
    }


def write_tokenizer_json(model_path: Path, out_path: Path) -> Path:
    content = tokenizer_json(Path(model_path).read_bytes(), str(model_path))
    out_path.write_text(json.dumps(content, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return out_path
