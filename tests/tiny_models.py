"""Tiny random-weight checkpoints of the real teacher architectures, saved the way their libraries save them.

Each `save_tiny_*` function writes a folder that the matching teacher plugin loads exactly as it
would load a downloaded checkpoint: transformers folders through `save_pretrained`, open_clip
folders as open_clip_config.json + open_clip_model.safetensors (open_clip's hub layout). Widths are
32, layers 2, images 32 px, so building and loading one takes well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_EMBED_DIM = 16
TINY_IMAGE_SIZE = 32
TINY_MAX_POSITIONS = 40  # text positions of the tiny BERT / XLM-R encoders

# A small bilingual corpus for the tiny tokenizers.
CAPTIONS = [
    "a photo of a cat",
    "a photo of a dog on the grass",
    "a red car under a blue sky",
    "a bird flying over the water",
    "two apples and a banana",
    "一只猫的照片",
    "草地上的一只狗",
    "蓝天下的红色汽车",
    "飞过水面的小鸟",
    "两个苹果和一根香蕉",
]

_TINY_TRANSFORMER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_TINY_VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    image_size=TINY_IMAGE_SIZE,
    patch_size=8,
)


def write_bert_vocab(folder: Path) -> Path:
    """A WordPiece vocab.txt: BERT's special tokens, every character of CAPTIONS, and their English words."""
    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for caption in CAPTIONS for w in caption.split() if w.isascii()})
    chars = sorted({c for caption in CAPTIONS for c in caption if not c.isspace()})
    tokens = list(dict.fromkeys(specials + words + chars + ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]))
    path = folder / "vocab.txt"
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def train_xlmr_sentencepiece(folder: Path) -> Path:
    """A tiny unigram SentencePiece model saved as XLM-R's `sentencepiece.bpe.model`."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "spm"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CAPTIONS * 4),
        model_prefix=str(prefix),
        vocab_size=120,
        character_coverage=1.0,
        model_type="unigram",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    target = folder / "sentencepiece.bpe.model"
    prefix.with_suffix(".model").replace(target)
    prefix.with_suffix(".vocab").unlink()
    return target


def tiny_xlmr_tokenizer(work: Path):
    from transformers import XLMRobertaTokenizer

    train_xlmr_sentencepiece(work)
    return XLMRobertaTokenizer.from_pretrained(work, model_max_length=TINY_MAX_POSITIONS - 2)


def save_tiny_chinese_clip(folder: Path, seed: int = 0) -> Path:
    """ChineseCLIPModel (BERT text, ViT image) + ChineseCLIPProcessor (BertTokenizer from vocab.txt)."""
    from transformers import (
        BertTokenizer,
        ChineseCLIPConfig,
        ChineseCLIPImageProcessor,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )

    write_bert_vocab(folder / "_vocab")
    tokenizer = BertTokenizer.from_pretrained(folder / "_vocab", model_max_length=TINY_MAX_POSITIONS)
    size = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    processor = ChineseCLIPProcessor(
        image_processor=ChineseCLIPImageProcessor(size=size, crop_size=size, do_center_crop=False), tokenizer=tokenizer
    )
    config = ChineseCLIPConfig(
        text_config=dict(vocab_size=len(tokenizer), max_position_embeddings=TINY_MAX_POSITIONS, **_TINY_TRANSFORMER),
        vision_config=dict(projection_dim=TINY_EMBED_DIM, **_TINY_VISION),
        projection_dim=TINY_EMBED_DIM,
    )
    torch.manual_seed(seed)
    ChineseCLIPModel(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def save_tiny_altclip(folder: Path, seed: int = 0) -> Path:
    """AltCLIPModel (XLM-R text, CLIP ViT image) + AltCLIPProcessor (XLMRobertaTokenizer, CLIPImageProcessor)."""
    from transformers import AltCLIPConfig, AltCLIPModel, AltCLIPProcessor, CLIPImageProcessor

    tokenizer = tiny_xlmr_tokenizer(folder / "_spm")
    processor = AltCLIPProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
        ),
        tokenizer=tokenizer,
    )
    config = AltCLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            max_position_embeddings=TINY_MAX_POSITIONS,
            project_dim=32,
            pad_token_id=tokenizer.pad_token_id,
            **_TINY_TRANSFORMER,
        ),
        vision_config=dict(projection_dim=TINY_EMBED_DIM, **_TINY_VISION),
        projection_dim=TINY_EMBED_DIM,
    )
    torch.manual_seed(seed)
    AltCLIPModel(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_open_clip_config(embed_dim: int = TINY_EMBED_DIM) -> dict:
    """An open_clip CLIP config: ViT 32 px / patch 8, text transformer on the default 49408-token BPE vocab."""
    return {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": TINY_IMAGE_SIZE, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }


def save_tiny_open_clip(folder: Path, seed: int = 0, embed_dim: int = TINY_EMBED_DIM) -> Path:
    """open_clip CLIP saved as open_clip_config.json + open_clip_model.safetensors (its hub layout)."""
    import open_clip
    import safetensors.torch
    from open_clip.constants import HF_CONFIG_NAME, HF_SAFE_WEIGHTS_NAME
    from open_clip.model import set_model_preprocess_cfg
    from open_clip.push_to_hf_hub import save_config_for_hf

    config = tiny_open_clip_config(embed_dim)
    torch.manual_seed(seed)
    model = open_clip.CLIP(**config)
    set_model_preprocess_cfg(
        model,
        {
            "size": TINY_IMAGE_SIZE,
            "mean": open_clip.OPENAI_DATASET_MEAN,
            "std": open_clip.OPENAI_DATASET_STD,
            "interpolation": "bicubic",
            "resize_mode": "shortest",
        },
    )
    folder.mkdir(parents=True, exist_ok=True)
    safetensors.torch.save_file(model.state_dict(), folder / HF_SAFE_WEIGHTS_NAME)
    save_config_for_hf(model, folder / HF_CONFIG_NAME, model_config=config)
    return folder


def _tiny_xlmr(tokenizer, seed: int):
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=TINY_MAX_POSITIONS,
        pad_token_id=tokenizer.pad_token_id,
        type_vocab_size=1,
        **_TINY_TRANSFORMER,
    )
    torch.manual_seed(seed)
    return XLMRobertaModel(config)


def save_tiny_mclip(folder: Path, seed: int = 0, embed_dim: int = TINY_EMBED_DIM) -> Path:
    """The plain mclip layout: a tiny XLM-R saved by save_pretrained + projection.safetensors."""
    import safetensors.torch

    tokenizer = tiny_xlmr_tokenizer(folder / "_spm")
    encoder = _tiny_xlmr(tokenizer, seed)
    projection = torch.nn.Linear(encoder.config.hidden_size, embed_dim)
    encoder.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    safetensors.torch.save_file(
        {"weight": projection.weight.detach().contiguous(), "bias": projection.bias.detach().contiguous()},
        folder / "projection.safetensors",
    )
    return folder


def save_tiny_mclip_original(folder: Path, seed: int = 0, embed_dim: int = TINY_EMBED_DIM) -> Path:
    """M-CLIP's own layout: an "M-CLIP" config.json naming its base encoder, one weights file with
    `transformer.*` and `LinearTransformation.*`, tokenizer files. The base encoder's config sits in
    `<folder>/_base` (for the real checkpoints it is a hub id such as "xlm-roberta-large").
    """
    import safetensors.torch

    tokenizer = tiny_xlmr_tokenizer(folder / "_spm")
    encoder = _tiny_xlmr(tokenizer, seed)
    projection = torch.nn.Linear(encoder.config.hidden_size, embed_dim)
    base = folder / "_base"
    encoder.config.save_pretrained(base)
    state = {f"transformer.{k}": v.contiguous() for k, v in encoder.state_dict().items()}
    state.update({f"LinearTransformation.{k}": v.detach().contiguous() for k, v in projection.state_dict().items()})
    safetensors.torch.save_file(state, folder / "model.safetensors")
    tokenizer.save_pretrained(folder)
    config = {
        "model_type": "M-CLIP",
        "modelBase": str(base),
        "transformerDimensions": encoder.config.hidden_size,
        "numDims": embed_dim,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def install_in_hub_cache(folder: Path, hub_cache: Path, repo_id: str) -> Path:
    """Copy a checkpoint folder into a Hugging Face hub cache as if `repo_id` had been downloaded there.

    The layout is huggingface_hub's: models--<org>--<name>/refs/main holding a commit hash and
    snapshots/<hash>/ holding the files (top-level files only, as a repo would have them).
    """
    import shutil

    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file():
            shutil.copy2(path, snapshot / path.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
