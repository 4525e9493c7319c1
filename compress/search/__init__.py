"""Hardware-aware student search: candidate towers from YAML spaces, measured as ExecuTorch programs
(or priced from a phone's per-operator latency table), ranked by a short distillation proxy.

    python -m compress search --image-latency-ms 15 --text-latency-ms 10 --size-mb 30

    from compress.search import Budgets, load_space, default_space_path, run_search
"""

from compress.lazy import lazy_exports

# Names resolve on first use, so the command line can read `compress.search.settings` without torch.
_HOMES = {
    "Budgets": "search",
    "Candidate": "space",
    "CandidateResult": "search",
    "LatencyCache": "measure",
    "LatencyTable": "lut",
    "Pair": "pareto",
    "ProxyCache": "proxy",
    "ProxyData": "proxy",
    "ProxyResult": "proxy",
    "ProxySettings": "settings",
    "SearchResult": "search",
    "SearchSpace": "space",
    "TowerMeasurement": "measure",
    "build_tower": "towers",
    "chosen_student_config": "student_file",
    "default_space_path": "space",
    "dominates": "pareto",
    "example_input": "towers",
    "export_program": "signatures",
    "load_space": "space",
    "lut_template": "lut",
    "measure_candidate": "measure",
    "measure_module": "measure",
    "op_signatures": "signatures",
    "pair_candidates": "pareto",
    "pareto_front": "pareto",
    "parse_space": "space",
    "pick": "pareto",
    "proxy_candidate": "proxy",
    "pte_path": "measure",
    "read_student_config": "student_file",
    "run_search": "search",
    "time_pte": "measure",
    "tower_op_signatures": "search",
    "write_lut_template": "lut",
    "write_space_lut_template": "search",
    "write_student_config": "student_file",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOMES)

__all__ = [
    "Budgets",
    "Candidate",
    "CandidateResult",
    "LatencyCache",
    "LatencyTable",
    "Pair",
    "ProxyCache",
    "ProxyData",
    "ProxyResult",
    "ProxySettings",
    "SearchResult",
    "SearchSpace",
    "TowerMeasurement",
    "build_tower",
    "chosen_student_config",
    "default_space_path",
    "dominates",
    "example_input",
    "export_program",
    "load_space",
    "lut_template",
    "measure_candidate",
    "measure_module",
    "op_signatures",
    "pair_candidates",
    "pareto_front",
    "parse_space",
    "pick",
    "proxy_candidate",
    "pte_path",
    "read_student_config",
    "run_search",
    "time_pte",
    "tower_op_signatures",
    "write_lut_template",
    "write_space_lut_template",
    "write_student_config",
]
