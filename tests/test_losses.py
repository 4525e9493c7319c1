"""The losses against values worked out by hand for 2x2 embeddings."""

from __future__ import annotations

import math

import pytest
import torch

from compress import registry
from compress.errors import CompressError
from compress.losses import (
    AffinityMimicLoss,
    CosineFeatureLoss,
    InfoNCELoss,
    MSEFeatureLoss,
    SmoothL1FeatureLoss,
)

R = 1 / math.sqrt(2)

# Student rows normalise to (0.6, 0.8) and (1, 0); teacher rows to (0, 1) and (r, r), r = 1/sqrt(2).
STUDENT = torch.tensor([[3.0, 4.0], [2.0, 0.0]])
TEACHER = torch.tensor([[0.0, 2.0], [1.0, 1.0]])
# Element-wise differences of the normalised rows.
DIFFS = [0.6 - 0.0, 0.8 - 1.0, 1.0 - R, 0.0 - R]


def test_registry_names_resolve_to_the_loss_classes():
    assert registry.get("losses", "mse") is MSEFeatureLoss
    assert registry.get("losses", "smooth_l1") is SmoothL1FeatureLoss
    assert registry.get("losses", "cosine") is CosineFeatureLoss
    assert registry.get("losses", "infonce") is InfoNCELoss
    assert registry.get("losses", "affinity") is AffinityMimicLoss


def test_mse_on_normalised_embeddings():
    expected = (0.6**2 + 0.2**2 + (1 - R) ** 2 + R**2) / 4  # = 0.2464466...
    assert sum(d * d for d in DIFFS) / 4 == pytest.approx(expected)
    assert MSEFeatureLoss()(STUDENT, TEACHER).item() == pytest.approx(expected, rel=1e-6)
    assert MSEFeatureLoss(weight=3.0)(STUDENT, TEACHER).item() == pytest.approx(3 * expected, rel=1e-6)


def test_smooth_l1_uses_beta_between_quadratic_and_linear():
    beta = 0.5
    # |0.6| >= beta: 0.6 - beta/2;  |0.2| < beta: 0.5*0.2^2/beta;  |1-r| < beta: quadratic;  |r| >= beta: r - beta/2
    expected = ((0.6 - 0.25) + 0.5 * 0.04 / 0.5 + 0.5 * (1 - R) ** 2 / 0.5 + (R - 0.25)) / 4  # = 0.2332233...
    assert SmoothL1FeatureLoss(beta=beta)(STUDENT, TEACHER).item() == pytest.approx(expected, rel=1e-6)
    # With beta = 1 every difference is in the quadratic part: half the MSE.
    half_mse = 0.5 * (0.36 + 0.04 + (1 - R) ** 2 + R**2) / 4
    assert SmoothL1FeatureLoss(beta=1.0)(STUDENT, TEACHER).item() == pytest.approx(half_mse, rel=1e-6)


def test_cosine_is_one_minus_cosine_similarity():
    cos_first = 0.6 * 0.0 + 0.8 * 1.0  # 0.8
    cos_second = 1.0 * R + 0.0 * R
    expected = ((1 - cos_first) + (1 - cos_second)) / 2  # = 0.2464466...
    assert CosineFeatureLoss(weight=2.0)(STUDENT, TEACHER).item() == pytest.approx(2 * expected, rel=1e-6)


def test_feature_losses_are_zero_for_parallel_embeddings_of_any_length():
    student = torch.tensor([[1.0, 2.0], [-3.0, 0.5]])
    for loss in (MSEFeatureLoss(), SmoothL1FeatureLoss(), CosineFeatureLoss()):
        assert loss(student, 7.0 * student).item() == pytest.approx(0.0, abs=1e-7)


def test_feature_loss_refuses_different_widths():
    with pytest.raises(CompressError, match="adapter"):
        MSEFeatureLoss()(torch.ones(2, 3), torch.ones(2, 4))
    with pytest.raises(CompressError, match="batch sizes differ"):
        MSEFeatureLoss()(torch.ones(2, 3), torch.ones(3, 3))


def _log1p_exp(x: float) -> float:
    return math.log(1 + math.exp(x))


def test_infonce_symmetric_with_temperature():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    loss = InfoNCELoss(init_temperature=0.5)  # logit scale 2
    # cosine similarities [[1, 0.6], [0, 0.8]] -> logits [[2, 1.2], [0, 1.6]]
    # image->text rows: -log softmax of the diagonal = log(1 + e^(other - own))
    i2t = (_log1p_exp(1.2 - 2.0) + _log1p_exp(0.0 - 1.6)) / 2
    # text->image uses the columns: [[2, 0], [1.2, 1.6]]
    t2i = (_log1p_exp(0.0 - 2.0) + _log1p_exp(1.2 - 1.6)) / 2
    assert loss(image, text).item() == pytest.approx((i2t + t2i) / 2, rel=1e-6)
    assert InfoNCELoss(weight=0.5, init_temperature=0.5)(image, text).item() == pytest.approx((i2t + t2i) / 4, rel=1e-6)


def test_infonce_temperature_starts_at_clip_value_learns_and_is_clamped_at_100():
    loss = InfoNCELoss()
    assert loss.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    assert loss.scale().item() == pytest.approx(1 / 0.07, rel=1e-6)
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.1], [0.2, 1.0]])
    loss(image, text).backward()
    assert loss.logit_scale.grad is not None and loss.logit_scale.grad.item() != 0.0

    with torch.no_grad():
        loss.logit_scale.fill_(math.log(1000.0))
    loss.logit_scale.grad = None
    assert loss.scale().item() == pytest.approx(100.0, rel=1e-6)
    loss(image, text).backward()
    assert loss.logit_scale.grad.item() == 0.0  # clamped: no push beyond 100


def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(x) for x in row]
    return [e / sum(exps) for e in exps]


def _kl_rows(teacher_logits: list[list[float]], student_logits: list[list[float]]) -> float:
    """Mean over rows of sum_j p_j log(p_j / q_j), p from the teacher, q from the student."""
    total = 0.0
    for t_row, s_row in zip(teacher_logits, student_logits):
        p, q = _softmax(t_row), _softmax(s_row)
        total += sum(pj * math.log(pj / qj) for pj, qj in zip(p, q))
    return total / len(teacher_logits)


def test_affinity_mimicking_is_kl_of_both_directions():
    student_image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    student_text = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    teacher_image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher_text = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    loss = AffinityMimicLoss(teacher_temperature=0.5, init_temperature=1.0)  # student scale 1, teacher scale 2

    student_sims = [[1.0, 0.6], [0.0, 0.8]]
    teacher_logits = [[0.8 * 2, 0.0 * 2], [0.6 * 2, 1.0 * 2]]
    columns = lambda m: [[m[0][0], m[1][0]], [m[0][1], m[1][1]]]  # noqa: E731
    i2t = _kl_rows(teacher_logits, student_sims)
    t2i = _kl_rows(columns(teacher_logits), columns(student_sims))
    expected = (i2t + t2i) / 2
    got = loss(student_image, student_text, teacher_image, teacher_text)
    assert got.item() == pytest.approx(expected, rel=1e-5)

    # A shared student scale (the InfoNCE one) replaces the loss's own: scale 2 doubles the student logits.
    shared = torch.tensor(2.0)
    doubled = [[2 * x for x in row] for row in student_sims]
    expected_shared = (_kl_rows(teacher_logits, doubled) + _kl_rows(columns(teacher_logits), columns(doubled))) / 2
    got_shared = loss(student_image, student_text, teacher_image, teacher_text, logit_scale=shared)
    assert got_shared.item() == pytest.approx(expected_shared, rel=1e-5)


def test_affinity_is_zero_when_the_student_matches_the_teacher_distribution():
    emb_i = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    emb_t = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    # Same embeddings and the same temperature on both sides: identical distributions.
    loss = AffinityMimicLoss(teacher_temperature=0.25, init_temperature=0.25)
    assert loss(emb_i, emb_t, emb_i, emb_t).item() == pytest.approx(0.0, abs=1e-6)


def test_bad_loss_parameters_are_refused():
    with pytest.raises(CompressError, match="beta"):
        SmoothL1FeatureLoss(beta=0.0)
    with pytest.raises(CompressError, match="teacher_temperature"):
        AffinityMimicLoss(teacher_temperature=-1.0)
    with pytest.raises(CompressError, match="temperature"):
        InfoNCELoss(init_temperature=0.0)
