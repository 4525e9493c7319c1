"""Classification and retrieval metrics, as ELEVATER and the CLIP papers define them.

Every function takes a score matrix (higher is better) and integer labels; none depends on how
the scores were produced, so each is tested against hand-computed values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from compress.eval.zeroshot import top_k_accuracy

# Names used in results and reports. ELEVATER's "accuracy" is top-1.
TOP1 = "top1"
TOP5 = "top5"
MEAN_PER_CLASS = "mean_per_class"
MAP_11PT = "map_11pt"
ROC_AUC = "roc_auc"
CLASSIFICATION_METRICS = (TOP1, TOP5, MEAN_PER_CLASS)
PRIMARY_METRICS = (TOP1, MEAN_PER_CLASS, MAP_11PT, ROC_AUC)

RECALL_KS = (1, 5, 10)


class UndefinedMetricError(ValueError):
    """The metric has no value on this input (e.g. ROC-AUC when only one class occurs)."""


def _as_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).cpu().numpy() if x.is_floating_point() else x.cpu().numpy()
    return np.asarray(x)


def mean_per_class_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 recall of each class that occurs in `labels`, averaged over those classes."""
    predicted = logits.argmax(dim=1)
    recalls = [(predicted[labels == c] == c).float().mean().item() for c in labels.unique().tolist()]
    return float(sum(recalls) / len(recalls))


def average_precision_11pt(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """PASCAL VOC 2007 11-point interpolated average precision of one class.

    Rank by descending score; at each recall level t in {0, 0.1, ..., 1} take the highest precision
    reached at a recall >= t (0 if none); average the 11 values.
    """
    scores, positives = _as_numpy(scores).astype(np.float64), _as_numpy(positives).astype(bool)
    n_pos = int(positives.sum())
    if n_pos == 0:
        raise UndefinedMetricError("average precision needs at least one positive")
    order = np.argsort(-scores, kind="stable")
    hits = positives[order]
    true_pos = np.cumsum(hits)
    precision = true_pos / np.arange(1, len(hits) + 1)
    recall = true_pos / n_pos
    levels = np.linspace(0.0, 1.0, 11)
    return float(np.mean([precision[recall >= t - 1e-12].max(initial=0.0) for t in levels]))


def mean_average_precision_11pt(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """11-point mAP over the classes that occur in `labels` (single-label ground truth).

    Each class is a binary ranking problem: its column of scores over all images, positives the
    images of that class. Classes with no image have no average precision and are left out.
    """
    scores = _as_numpy(logits)
    labels_np = _as_numpy(labels)
    present = np.unique(labels_np)
    return float(np.mean([average_precision_11pt(scores[:, c], labels_np == c) for c in present]))


def roc_auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve: the chance a random positive outranks a random negative (ties count half)."""
    scores, positives = _as_numpy(scores).astype(np.float64), _as_numpy(positives).astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        raise UndefinedMetricError("ROC-AUC needs both positive and negative samples")
    ranks = _average_ranks(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (the Mann-Whitney convention)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        stop = start
        while stop + 1 < len(values) and sorted_values[stop + 1] == sorted_values[start]:
            stop += 1
        ranks[order[start : stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return ranks


def binary_roc_auc(logits: torch.Tensor, labels: torch.Tensor, positive: int = 1) -> float:
    """ROC-AUC of a 2-class zero-shot classifier, scoring each image by positive minus negative logit.

    The positive-class probability of the 2-way softmax is a monotonic function of that difference,
    so the AUC equals the one computed from probabilities, without softmax saturation creating ties.
    """
    if logits.shape[1] != 2:
        raise UndefinedMetricError(f"ROC-AUC here is for 2 classes, got {logits.shape[1]}")
    negative = 1 - positive
    margin = logits[:, positive].double() - logits[:, negative].double()
    return roc_auc(margin, labels == positive)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, primary: str = TOP1) -> dict[str, float]:
    """top-1, top-5 and mean-per-class accuracy, plus the primary metric when it is another one.

    Raises UndefinedMetricError when the primary metric has no value on these labels.
    """
    labels = labels.long()
    metrics = {
        TOP1: top_k_accuracy(logits, labels, 1),
        TOP5: top_k_accuracy(logits, labels, 5),
        MEAN_PER_CLASS: mean_per_class_accuracy(logits, labels),
    }
    if primary == MAP_11PT:
        metrics[MAP_11PT] = mean_average_precision_11pt(logits, labels)
    elif primary == ROC_AUC:
        metrics[ROC_AUC] = binary_roc_auc(logits, labels)
    elif primary not in metrics:
        raise ValueError(f"unknown primary metric {primary!r}; known: {', '.join(PRIMARY_METRICS)}")
    return metrics


def recall_name(direction: str, k: int) -> str:
    return f"{direction}_R@{k}"


def retrieval_recalls(similarity: torch.Tensor, image_of_text: Sequence[int], ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """Recall@k both ways from a [texts, images] similarity matrix.

    `image_of_text[t]` is the image caption t belongs to; an image may have several captions.
    image->text: an image is a hit when any of its captions is among its k most similar texts.
    text->image: a caption is a hit when its image is among its k most similar images.
    Every image must have at least one caption.
    """
    n_texts, n_images = similarity.shape
    owner = torch.as_tensor(list(image_of_text), dtype=torch.long)
    if owner.numel() != n_texts:
        raise ValueError(f"{n_texts} texts but {owner.numel()} owners")
    if torch.bincount(owner, minlength=n_images).min() == 0:
        raise ValueError("every image needs at least one caption")
    similarity = similarity.double()
    results = {}
    text_ranking = similarity.argsort(dim=1, descending=True, stable=True)  # [T, I]
    image_ranking = similarity.T.argsort(dim=1, descending=True, stable=True)  # [I, T]
    for k in ks:
        top_images = text_ranking[:, : min(k, n_images)]
        t2i = (top_images == owner[:, None]).any(dim=1).double().mean().item()
        top_texts = image_ranking[:, : min(k, n_texts)]
        i2t = (owner[top_texts] == torch.arange(n_images)[:, None]).any(dim=1).double().mean().item()
        results[recall_name("i2t", k)] = i2t
        results[recall_name("t2i", k)] = t2i
    results["mean_recall"] = sum(results.values()) / len(results)
    return results
