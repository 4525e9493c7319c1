"""A loss from a separate distribution, found through the `compress.losses` entry points and used by name."""

from __future__ import annotations

import textwrap

import pytest
import torch
from distill_helpers import ColourPairs, RandomTeacher, make_student
from plugin_fixtures import install_distribution

from compress import registry
from compress.distill import DistillConfig, Distiller
from compress.errors import CompressError

PLUGIN_SOURCE = '''
"""Losses of a third-party package."""
import torch
import torch.nn.functional as F
from torch import nn


class PairDistanceLoss(nn.Module):
    """Mean squared distance between each normalised image and its caption."""

    kind = "pair"

    def __init__(self, weight=1.0, power=2.0):
        super().__init__()
        self.weight, self.power = float(weight), float(power)

    def forward(self, image, text):
        gap = (F.normalize(image, dim=-1) - F.normalize(text, dim=-1)).norm(dim=-1)
        return self.weight * gap.pow(self.power).mean()


class L1FeatureLoss(nn.Module):
    """Mean absolute difference of normalised embeddings."""

    kind = "feature"

    def __init__(self, weight=1.0):
        super().__init__()
        self.weight = float(weight)

    def forward(self, student, teacher):
        return self.weight * (F.normalize(student, dim=-1) - F.normalize(teacher, dim=-1)).abs().mean()


class NoKindLoss(nn.Module):
    def forward(self, a, b):
        return (a - b).mean()
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """Install `myloss_plugin` as its own distribution: a module plus a dist-info folder on sys.path."""
    entries = {"myloss": "PairDistanceLoss", "my_l1": "L1FeatureLoss", "no_kind": "NoKindLoss"}
    root = install_distribution(
        tmp_path / "site",
        "myloss-plugin",
        "myloss_plugin",
        textwrap.dedent(PLUGIN_SOURCE),
        "compress.losses",
        entries,
        version="0.1",
    )
    monkeypatch.syspath_prepend(str(root))
    yield root


def _distiller(tmp_path, **options):
    return Distiller(
        RandomTeacher(embed_dim=24),
        make_student(embed_dim=16),
        data=ColourPairs(24),
        run_dir=tmp_path / "run",
        batch_size=8,
        lr=1e-2,
        progress=False,
        **options,
    )


def test_the_plugin_is_registered_from_its_own_distribution(plugin):
    assert {"myloss", "my_l1"} <= set(registry.names("losses"))
    assert registry.entry_points_of("losses")["myloss"].dist.name == "myloss-plugin"


def test_a_plugin_pair_loss_is_a_stage2_term_by_name(tmp_path, plugin):
    report = _distiller(
        tmp_path, stage2_losses={"infonce": 1.0, "myloss": 0.5}, loss_options={"myloss": {"power": 1.0}}, steps={"align": 3}
    ).fit("align")
    log = report["loss_log"]
    assert len(log) == 3 and all({"infonce", "myloss"} <= set(entry) for entry in log)
    for entry in log:
        assert entry["myloss"] > 0 and entry["loss"] == pytest.approx(entry["infonce"] + entry["myloss"], rel=1e-5)
    assert report["config"]["stage2_losses"] == {"infonce": 1.0, "myloss": 0.5}


def test_a_plugin_feature_loss_serves_stage1_and_the_stage2_feature_term(tmp_path, plugin):
    distiller = _distiller(tmp_path, stage1_loss="my_l1", stage2_losses={"infonce": 1.0, "feature": 0.5}, steps=2)
    losses = distiller.objectives.losses
    assert type(losses["stage1_feature"]).__name__ == type(losses["stage2_feature"]).__name__ == "L1FeatureLoss"
    report = distiller.fit("both")
    assert all({"image", "text"} <= set(e) for e in report["loss_log"] if e["stage"] == "distill")
    assert all({"infonce", "feature_image", "feature_text"} <= set(e) for e in report["loss_log"] if e["stage"] == "align")

    # The stage-1 values are the plugin's own formula, not a first-party loss's.
    student, teacher = torch.randn(4, 24), torch.randn(4, 24)
    expected = (torch.nn.functional.normalize(student, dim=-1) - torch.nn.functional.normalize(teacher, dim=-1)).abs()
    assert losses["stage1_feature"](student, teacher).item() == pytest.approx(expected.mean().item(), rel=1e-6)


def test_a_plugin_feature_loss_named_in_stage2_is_its_own_term(tmp_path, plugin):
    report = _distiller(tmp_path, stage2_losses={"infonce": 1.0, "my_l1": 0.5}, steps={"align": 2}).fit("align")
    for entry in report["loss_log"]:
        assert entry["loss"] == pytest.approx(entry["infonce"] + entry["my_l1_image"] + entry["my_l1_text"], rel=1e-5)
    with pytest.raises(CompressError, match="'my_l1' and 'feature' name the same loss"):
        DistillConfig(stage1_loss="my_l1", stage2_losses={"feature": 1.0, "my_l1": 1.0})


def test_unknown_loss_names_list_the_registered_ones_plugins_included(plugin):
    with pytest.raises(CompressError, match="unknown term 'kd'") as unknown:
        DistillConfig(stage2_losses={"infonce": 1.0, "kd": 1.0})
    assert "myloss" in str(unknown.value) and "affinity" in str(unknown.value)
    with pytest.raises(CompressError, match="stage1_loss 'myloss' is not a registered feature loss") as wrong_kind:
        DistillConfig(stage1_loss="myloss")
    assert "my_l1" in str(wrong_kind.value) and "smooth_l1" in str(wrong_kind.value)


def test_a_loss_without_a_kind_is_refused_by_name(plugin):
    with pytest.raises(CompressError, match="loss 'no_kind' .*NoKindLoss.* declares kind None"):
        DistillConfig(stage2_losses={"infonce": 1.0, "no_kind": 1.0})


def test_without_the_distribution_the_name_is_unknown():
    assert "myloss" not in registry.names("losses")
    with pytest.raises(CompressError, match="unknown term 'myloss'"):
        DistillConfig(stage2_losses={"myloss": 1.0})
