"""Evaluation: zero-shot classification and retrieval for teachers, students and bundles.

    from compress.eval import ClassificationSet, evaluate_models, open_classification, write_eval_report
    results = evaluate_models({"teacher": teacher, "student": student},
                              [open_classification("/data/elevater/cifar-10")], langs=("en", "zh"))
    write_eval_report(results, "runs/eval")
"""

from importlib import import_module

_EXPORTS = {
    "ClassificationSet": "compress.eval.datasets",
    "open_classification": "compress.eval.datasets",
    "demo_task_set": "compress.eval.datasets",
    "RetrievalSet": "compress.eval.retrieval",
    "open_retrieval": "compress.eval.retrieval",
    "demo_retrieval_set": "compress.eval.retrieval",
    "EvalResults": "compress.eval.runner",
    "evaluate_models": "compress.eval.runner",
    "evaluate_retrieval": "compress.eval.runner",
    "evaluate_zero_shot": "compress.eval.runner",
    "resolve_model": "compress.eval.models",
    "write_eval_report": "compress.eval.report",
    "builtin_names": "compress.eval.catalog",
    "get_builtin": "compress.eval.catalog",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):  # import the heavier parts (torch, rich, matplotlib) only when used
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'compress.eval' has no attribute {name!r}")
