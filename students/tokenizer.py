"""The student's SentencePiece tokenizer: training, saving, loading and fixed-length encoding.

Ids 0-3 are fixed so the text tower and phone apps can rely on them: 0 pad, 1 unk, 2 bos (the
CLS position), 3 eos. Text is not normalised (identity rule, spaces kept as written), so
`decode(encode(x)) == x` for every string that fits, and a phone port needs no normalisation
tables: it only has to reproduce SentencePiece's segmentation of the raw string.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm
import torch

from compress.errors import CompressError
from compress.files import write_bytes_atomically

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("unigram", "bpe")
FILENAME = "tokenizer.model"
# Bump when the training options below change, so cached default tokenizers are retrained.
TRAINING_RECIPE_VERSION = 1
# The data spec whose captions train the tokenizer of a student built without one: the demo data
# source's training split, reached through the data-source registry like any other corpus.
DEFAULT_CORPUS = "demo:train"

log = logging.getLogger(__name__)


class SentencePieceTokenizer:
    """A loaded SentencePiece model that turns captions into fixed-length id rows.

    `encode(texts, max_length)` gives `[N, max_length]` int64: bos, pieces, eos, then pad (0).
    A caption too long for the row keeps its first pieces and still ends with eos.
    The attention mask is `ids != tokenizer.pad_id`.
    """

    pad_id, unk_id, bos_id, eos_id = PAD_ID, UNK_ID, BOS_ID, EOS_ID

    def __init__(self, model_bytes: bytes, source: str = "<memory>"):
        self.source = source
        self._model_bytes = bytes(model_bytes)
        try:
            self._sp = spm.SentencePieceProcessor(model_proto=self._model_bytes)
        except (RuntimeError, OSError) as exc:
            raise CompressError(f"{source}: not a SentencePiece model ({exc})") from None
        expected = {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}
        found = {"pad": self._sp.pad_id(), "unk": self._sp.unk_id(), "bos": self._sp.bos_id(), "eos": self._sp.eos_id()}
        if found != expected:
            raise CompressError(f"{source}: special token ids must be {expected}, found {found}")

    def __getstate__(self) -> dict:
        # the SentencePiece processor is a native object: copy and pickle the model bytes instead
        return {"model_bytes": self._model_bytes, "source": self.source}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_bytes"], source=state["source"])

    @classmethod
    def from_file(cls, path: str | Path) -> SentencePieceTokenizer:
        """Load a `tokenizer.model` written by `save` or `train_tokenizer`."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.is_file():
            raise CompressError(f"{path}: no such tokenizer file")
        return cls(path.read_bytes(), source=str(path))

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def model_bytes(self) -> bytes:
        """The serialised model, exactly as saved in `tokenizer.model`."""
        return self._model_bytes

    @property
    def digest(self) -> str:
        """sha256 of the serialised model: two tokenizers with equal digests give equal ids."""
        return hashlib.sha256(self._model_bytes).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the model atomically; a folder gets `tokenizer.model` inside it."""
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        write_bytes_atomically(path, self._model_bytes)
        return path

    def pieces(self, text: str) -> list[int]:
        """The ids of one text, without bos/eos or padding."""
        return self._sp.encode(text, out_type=int)

    def encode(self, texts: Sequence[str], max_length: int) -> torch.Tensor:
        """`[N, max_length]` int64 rows: bos, pieces (truncated to fit), eos, pad."""
        if isinstance(texts, str):
            raise CompressError("encode takes a list of texts, not a single string")
        if max_length < 2:
            raise CompressError(f"max_length must be at least 2 (bos and eos), got {max_length}")
        ids = torch.full((len(texts), max_length), PAD_ID, dtype=torch.long)
        room = max_length - 2
        for row, pieces in enumerate(self._sp.encode(list(texts), out_type=int)):
            kept = [BOS_ID, *pieces[:room], EOS_ID]
            ids[row, : len(kept)] = torch.tensor(kept, dtype=torch.long)
        return ids

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The text of one id row; pad, bos and eos are dropped."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return self._sp.decode([i for i in values if i not in (PAD_ID, BOS_ID, EOS_ID)])

    def id_to_piece(self, token_id: int) -> str:
        return self._sp.id_to_piece(token_id)

    def piece_to_id(self, piece: str) -> int:
        """The id of a vocabulary piece, or `unk_id` when the piece is not in the vocabulary."""
        return self._sp.piece_to_id(piece)

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(vocab_size={self.vocab_size}, source={self.source!r})"


def _training_options(vocab_size: int, model_type: str, character_coverage: float = 1.0) -> dict:
    return dict(
        vocab_size=vocab_size,
        model_type=model_type,
        # 1.0: every character of the training captions gets its own piece; below it, the rarest
        # characters (a large Chinese corpus holds more than a small vocabulary) go to byte fallback
        character_coverage=character_coverage,
        byte_fallback=True,  # anything unseen (emoji, rare characters) still encodes, as bytes
        hard_vocab_limit=False,  # a small corpus gives a smaller vocabulary instead of failing
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        num_threads=1,  # one thread keeps training bit-for-bit deterministic
        minloglevel=2,
    )


def train_tokenizer(
    captions: Iterable[str],
    out_path: str | Path,
    vocab_size: int = 8000,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
) -> SentencePieceTokenizer:
    """Train a tokenizer on captions held in memory and save it as `tokenizer.model`.

    `out_path` is the model file (ending in `.model`) or a folder to hold `tokenizer.model`.
    `vocab_size` is an upper bound: a corpus too small for it yields the largest vocabulary
    it supports. `character_coverage` below 1.0 leaves the rarest characters to byte fallback, for
    a corpus with more distinct characters than `vocab_size` (SentencePiece refuses that at 1.0).
    The same captions and options always give the same file.
    """
    if not 0.0 < character_coverage <= 1.0:
        raise CompressError(f"tokenizer character_coverage must be in (0, 1], got {character_coverage!r}")
    if model_type not in MODEL_TYPES:
        raise CompressError(f"unknown tokenizer model_type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}")
    texts = [text for text in captions if text and text.strip()]
    if not texts:
        raise CompressError("cannot train a tokenizer on no captions")
    out_path = Path(out_path)
    if out_path.suffix != ".model":
        out_path = out_path / FILENAME
    buffer = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=buffer, **_training_options(vocab_size, model_type, character_coverage)
        )
    except RuntimeError as exc:
        raise CompressError(f"tokenizer training failed for {out_path}: {exc}") from None
    tokenizer = SentencePieceTokenizer(buffer.getvalue(), source=str(out_path))
    if tokenizer.vocab_size < vocab_size:
        log.info(
            "tokenizer vocabulary is %d, below the requested %d: the corpus supports no more", tokenizer.vocab_size, vocab_size
        )
    tokenizer.save(out_path)
    return tokenizer


def _cache_path(corpus_digest: str, vocab_size: int, model_type: str) -> Path:
    """Where the tokenizer of one corpus and set of options lives in the compress cache."""
    from compress.paths import cache_dir

    identity = {
        "corpus": corpus_digest,
        "recipe": TRAINING_RECIPE_VERSION,
        "sentencepiece": spm.__version__,
        "vocab_size": vocab_size,
        "model_type": model_type,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / "tokenizers" / key / FILENAME


def default_tokenizer(vocab_size: int = 8000, model_type: str = "unigram", corpus=DEFAULT_CORPUS) -> SentencePieceTokenizer:
    """The default student's tokenizer, trained on the captions of the data spec `corpus`.

    `corpus` is opened like any data spec (`compress.open_data`), through the data-source registry;
    the default is the demo world's training split. Trained once per corpus digest and options,
    then loaded from `<cache_dir>/tokenizers/<key>/tokenizer.model`.
    """
    from compress.data import open_dataset

    dataset = open_dataset(corpus)
    path = _cache_path(dataset.digest(), vocab_size, model_type)
    if path.is_file():
        return SentencePieceTokenizer.from_file(path)
    captions = [caption for caption, _lang in dataset.captions()]
    return train_tokenizer(captions, path, vocab_size=vocab_size, model_type=model_type)
