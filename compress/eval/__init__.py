"""Evaluation: zero-shot classification and retrieval for teachers, students and bundles.

from compress.eval import ClassificationSet, evaluate_models, open_classification, write_eval_report
results = evaluate_models({"teacher": teacher, "student": student},
                          [open_classification("/data/elevater/cifar-10")], langs=("en", "zh"))
write_eval_report(results, "runs/eval")
"""

from compress.lazy import lazy_exports

_EXPORTS = {
    "ClassificationSet": "datasets",
    "open_classification": "datasets",
    "demo_task_set": "datasets",
    "task_set": "datasets",
    "RetrievalSet": "retrieval",
    "open_retrieval": "retrieval",
    "demo_retrieval_set": "retrieval",
    "source_retrieval_set": "retrieval",
    "EvalResults": "runner",
    "evaluate_models": "runner",
    "evaluate_retrieval": "runner",
    "evaluate_zero_shot": "runner",
    "write_eval_report": "report",
    "builtin_names": "catalog",
    "get_builtin": "catalog",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
