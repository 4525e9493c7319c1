"""Student families: every member of the default search spaces builds, exports at a static shape,
lowers to ExecuTorch with the XNNPACK delegate, runs in the ExecuTorch runtime and matches eager."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file
from search_helpers import default_members, lowered_member, shared_root

from compress.errors import CompressError
from compress.search import build_tower, default_space_path, example_input, export_program, load_space, parse_space, time_pte
from students.bilingual import DEFAULT_CONFIG
from students.mobilevit import MOBILEVIT_MODELS

MEMBERS = default_members()


@pytest.mark.parametrize("candidate", MEMBERS, ids=[f"{c.family}-{c.name}" for c in MEMBERS])
def test_default_member_lowers_runs_in_executorch_and_matches_eager(candidate, tmp_path_factory):
    lowered = lowered_member(shared_root(tmp_path_factory), candidate)
    measurement = lowered.measurement
    tower = build_tower(candidate)  # the same seed the measurement used
    example = example_input(candidate)
    with torch.no_grad():
        eager = tower(example)
    _, runtime = time_pte(lowered.pte, example, warmup=0, repeats=1)
    assert runtime.shape == eager.shape == (1, candidate.embed_dim)
    assert (runtime - eager).abs().max().item() <= 1e-4
    assert lowered.pte.stat().st_size == measurement.pte_bytes
    assert measurement.params == sum(p.numel() for p in tower.parameters())
    assert measurement.latency_ms > 0 and len(measurement.runs_ms) == 3
    assert measurement.delegation["subgraphs"] >= 1 and measurement.delegation["heavy_ops_outside"] == []
    heavy = "aten.conv2d" if candidate.family == "image" else "aten.linear"
    assert any(sig.startswith(heavy) for sig in measurement.ops)


def test_default_spaces_are_small_and_hold_the_default_student():
    image, text = (load_space(default_space_path(f)) for f in ("image", "text"))
    assert 2 <= len(image) <= 6 and 3 <= len(text) <= 6
    default_image = {k: DEFAULT_CONFIG["image"][k] for k in ("model", "image_size")}
    assert any({k: c.resolved[k] for k in default_image} == default_image for c in image.candidates)
    default_text = {k: v for k, v in DEFAULT_CONFIG["text"].items() if k not in ("vocab_size", "dropout")}
    assert any({k: c.resolved[k] for k in default_text} == default_text for c in text.candidates)
    assert image.embed_dim == text.embed_dim == DEFAULT_CONFIG["embed_dim"]


@pytest.mark.parametrize("model", ["mobilevit_xxs", "mobilevitv2_200"])  # v1, and v2's widest
def test_mobilevit_outside_the_default_space_builds_and_embeds(model):
    assert model in MOBILEVIT_MODELS
    candidate = parse_space({"family": "image", "embed_dim": 8, "candidates": [{"model": model, "image_size": 64}]}).candidates[0]
    with torch.no_grad():
        out = build_tower(candidate)(example_input(candidate))
    assert out.shape == (1, 8) and torch.isfinite(out).all()


@pytest.mark.parametrize(
    "options",
    [
        {"pooling": "cls", "norm": "post"},
        {"layers": 1, "hidden": 48, "heads": 3, "ffn": 96, "max_length": 12, "vocab_size": 500},
    ],
)
def test_text_variants_export_at_a_static_shape(options):
    base = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_length": 16, "vocab_size": 300}
    candidate = parse_space({"family": "text", "embed_dim": 16, "candidates": [{**base, **options}]}).candidates[0]
    tower, example = build_tower(candidate), example_input(candidate)
    program = export_program(tower, example)
    with torch.no_grad():
        assert torch.allclose(program.module()(example), tower(example), atol=1e-6)
    assert tower.token_embedding.num_embeddings == candidate.resolved["vocab_size"]


def test_an_image_candidate_starts_from_a_local_timm_checkpoint(tmp_path):
    backbone = timm.create_model("mobilevitv2_050", pretrained=False, num_classes=1000)
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(tmp_path / "mv2.safetensors"))
    space = {
        "family": "image",
        "candidates": [{"model": "mobilevitv2_050", "image_size": 64, "checkpoint": str(tmp_path / "mv2.safetensors")}],
    }
    tower = build_tower(parse_space(space).candidates[0])
    expected = backbone.state_dict()
    for key, value in tower.backbone.state_dict().items():
        assert torch.equal(value, expected[key]), key
    space["candidates"][0]["checkpoint"] = str(tmp_path / "missing.safetensors")
    with pytest.raises(CompressError, match="missing.safetensors: no such image checkpoint"):
        parse_space(space)
