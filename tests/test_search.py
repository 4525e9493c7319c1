"""`compress search`: spaces, the latency cache, the per-operator latency table, the Pareto front,
the chosen student file and the command line."""

from __future__ import annotations

import json
import random
import re
from types import SimpleNamespace

import pytest
import torch
import yaml
from search_helpers import lowered_member, shared_root

import compress
from compress.cli import main
from compress.demo_world import open_demo
from compress.errors import CompressError
from compress.recipes.dc_clip import student_section
from compress.search import (
    Budgets,
    LatencyCache,
    LatencyTable,
    ProxyCache,
    ProxySettings,
    default_space_path,
    dominates,
    load_space,
    measure_candidate,
    pair_candidates,
    pareto_front,
    parse_space,
    pick,
    read_student_config,
    run_search,
)
from compress.search.pareto import Pair, pair_quality
from compress.search.store import JsonStore
from students.tokenizer import train_tokenizer
from teachers.demo import load_demo_teacher

TINY_TEACHER = dict(steps=3, batch_size=8, width=4, text_width=16, text_heads=2, text_layers=1, embed_dim=16)
TINY_PROXY = ProxySettings(steps=2, batch_size=4, train_samples=8, val_samples=4, zero_shot_count=4)
SMALL_IMAGE = ["mobilevitv2_050@64", "mobilevitv2_075@64"]
SMALL_TEXT = ["L2-H128-A4-F512-T32-V8000", "L2-H256-A4-F512-T32-V8000", "L4-H256-A4-F512-T32-V8000"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return shared_root(tmp_path_factory)


@pytest.fixture
def cache_env(root, monkeypatch):
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(root))
    return root


@pytest.fixture(scope="module")
def small_spaces(root, tmp_path_factory):
    """Members of the default spaces (lowered once per session), and the same spaces as YAML files."""
    image = load_space(default_space_path("image")).subset(SMALL_IMAGE)
    text = load_space(default_space_path("text")).subset(SMALL_TEXT)
    folder = tmp_path_factory.mktemp("spaces")
    files = {}
    for space in (image, text):
        for candidate in space.candidates:
            lowered_member(root, candidate)
        files[space.family] = folder / f"{space.family}.yaml"
        files[space.family].write_text(
            yaml.safe_dump(
                {"family": space.family, "embed_dim": space.embed_dim, "candidates": [c.options for c in space.candidates]}
            ),
            encoding="utf-8",
        )
    return image, text, files


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("teacher") / "demo"
    load_demo_teacher(folder, progress=False, **TINY_TEACHER)
    return folder


def latency(root, candidate) -> float:
    return lowered_member(root, candidate).measurement.latency_ms


# ---------------------------------------------------------------- spaces


def test_a_space_is_the_grid_plus_the_listed_candidates_once_each():
    space = parse_space(
        {
            "family": "image",
            "embed_dim": 64,
            "fixed": {"drop_path_rate": 0.1},
            "grid": {"model": ["mobilevitv2_050", "mobilevit_xxs"], "image_size": [64, 96]},
            "candidates": [{"model": "mobilevitv2_050", "image_size": 64}, {"model": "mobilevitv2_100", "image_size": 128}],
        }
    )
    assert [c.name for c in space.candidates] == [
        "mobilevitv2_050@64",
        "mobilevitv2_050@96",
        "mobilevit_xxs@64",
        "mobilevit_xxs@96",
        "mobilevitv2_100@128",
    ]
    assert all(c.options["drop_path_rate"] == 0.1 and c.embed_dim == 64 for c in space.candidates)
    text = parse_space({"family": "text", "grid": {"layers": [1, 2]}, "fixed": {"pooling": "cls"}})
    assert [c.name for c in text.candidates] == ["L1-H256-A4-F512-T32-V8000-cls", "L2-H256-A4-F512-T32-V8000-cls"]
    twins = parse_space({"family": "text", "candidates": [{"layers": 1}, {"layers": 1, "dropout": 0.1}, {"layers": 1}]})
    assert [c.name for c in twins.candidates] == ["L1-H256-A4-F512-T32-V8000", "L1-H256-A4-F512-T32-V8000#2"]
    assert text.candidates[0].architecture["vocab_size"] == 8000


@pytest.mark.parametrize(
    "raw, match",
    [
        ([1, 2], "a search space is a mapping"),
        ({"family": "audio", "grid": {}}, "family must be one of image, text"),
        ({"family": "image", "grid": {"model": ["mobilevitv2_050"]}, "colour": 1}, "unknown key"),
        ({"family": "image", "grid": {"modle": ["mobilevitv2_050"]}}, "unknown option.*modle"),
        ({"family": "image", "grid": {"model": []}}, "needs a non-empty list"),
        ({"family": "image"}, "has no candidates"),
        ({"family": "image", "candidates": [{"model": "resnet50", "image_size": 64}]}, "unknown MobileViT model"),
        ({"family": "image", "candidates": [{"model": "mobilevitv2_050", "image_size": 100}]}, "multiple of 32"),
        ({"family": "text", "candidates": [{"hidden": 100, "heads": 3}]}, "not divisible by 3 heads"),
        ({"family": "text", "candidates": [{"vocab_size": "big"}]}, "vocab_size must be an integer"),
        ({"family": "text", "embed_dim": 0, "grid": {"layers": [1]}}, "embed_dim must be a positive integer"),
    ],
)
def test_bad_spaces_are_refused_with_the_reason(raw, match):
    with pytest.raises(CompressError, match=match):
        parse_space(raw, source="space.yaml")


def test_space_files_name_the_file_and_the_family(tmp_path):
    with pytest.raises(CompressError, match="holds image candidates, but text candidates are needed"):
        load_space(default_space_path("image"), family="text")
    broken = tmp_path / "broken.yaml"
    broken.write_text("family: [image\n", encoding="utf-8")
    with pytest.raises(CompressError, match="broken.yaml: not valid YAML"):
        load_space(broken)
    with pytest.raises(CompressError, match="missing.yaml: no such search space file"):
        load_space(tmp_path / "missing.yaml")


# ---------------------------------------------------------------- the latency cache


def test_a_measured_tower_is_read_back_from_the_cache(root, small_spaces, tmp_path, monkeypatch):
    candidate = small_spaces[0].candidates[0]
    first = lowered_member(root, candidate).measurement
    cache = LatencyCache(root / "search" / "latency")
    record = json.loads(cache.path_for(candidate).read_text(encoding="utf-8"))
    assert record["key"]["architecture"] == {
        "embed_dim": 256,
        "model": "mobilevitv2_050",
        "image_size": 64,
        "width": 1.0,
        "stage_strides": None,
        "act": None,
    }
    assert set(record["key"]["versions"]) == {"torch", "executorch"} and record["key"]["machine"]["cores"] >= 1

    again, hit = measure_candidate(candidate, cache, tmp_path / "pte")
    assert hit and again == first and not (tmp_path / "pte").exists()  # nothing was lowered

    # another ExecuTorch version, or another machine, is another key
    import compress.search.measure as measure

    monkeypatch.setattr(measure, "library_versions", lambda: {"torch": torch.__version__, "executorch": "0.0.1"})
    assert cache.get(candidate) is None


def test_an_unreadable_cache_record_is_a_miss(tmp_path):
    store = JsonStore(tmp_path)
    key = {"architecture": {"layers": 2}}
    store.put(key, {"value": 1})
    assert store.get(key)["value"] == 1
    store.path_for(key).write_text("{not json", encoding="utf-8")
    assert store.get(key) is None


# ---------------------------------------------------------------- the per-operator latency table


def test_lut_latency_is_the_sum_over_the_exported_graph(root, small_spaces):
    candidate = small_spaces[1].candidates[0]
    ops = lowered_member(root, candidate).measurement.ops
    values = {sig: 0.001 * (i + 1) for i, sig in enumerate(sorted(ops))}
    table = LatencyTable.from_dict({"device": "Pixel 8", "ops": {**values, "aten.never.default(f32[1])": 9.0}})
    assert table.latency(ops).latency_ms == pytest.approx(sum(values[sig] * n for sig, n in ops.items()))
    assert sum(ops.values()) > len(ops)  # repeated layers count once per node

    missing = sorted(ops)[0]
    partial = LatencyTable.from_dict({"ops": {s: v for s, v in values.items() if s != missing}}, source="phone.json")
    with pytest.raises(CompressError, match=r"phone.json: 1 operator signature\(s\) of the tower are not in the table") as err:
        partial.latency(ops)
    assert missing in str(err.value)
    counted = partial.latency(ops, on_unknown="zero")
    assert counted.unknown == {missing: ops[missing]}
    assert counted.latency_ms == pytest.approx(table.latency(ops).latency_ms - values[missing] * ops[missing])


@pytest.mark.parametrize(
    "raw, match",
    [
        ({"device": "x"}, 'with an "ops" object'),
        ({"ops": {"aten.add.Tensor(f32[1])": None}}, "have no latency yet"),
        ({"ops": {"aten.add.Tensor(f32[1])": -1}}, "must be a number >= 0"),
        ({"unit": "us", "ops": {}}, 'unit must be "ms"'),
        ({"format": "other", "ops": {}}, "is not 'compress-op-latency-table'"),
    ],
)
def test_bad_latency_tables_are_refused(raw, match):
    with pytest.raises(CompressError, match=match):
        LatencyTable.from_dict(raw, source="phone.json")


def test_the_template_command_lists_every_operator_of_the_spaces(cache_env, small_spaces, tmp_path):
    image, text, files = small_spaces
    out = tmp_path / "phone.json"
    code = main(
        [
            "search",
            "--space-image",
            str(files["image"]),
            "--space-text",
            str(files["text"]),
            "--write-lut-template",
            str(out),
            "--lut-device",
            "Pixel 8",
        ]
    )
    assert code == 0
    template = json.loads(out.read_text(encoding="utf-8"))
    assert template["device"] == "Pixel 8" and template["runtime"].startswith("executorch-")
    expected: dict[str, int] = {}
    for candidate in image.candidates + text.candidates:
        for sig, count in lowered_member(cache_env, candidate).measurement.ops.items():
            expected[sig] = expected.get(sig, 0) + count
    assert template["counts"] == dict(sorted(expected.items()))
    assert set(template["ops"]) == set(expected) and all(v is None for v in template["ops"].values())
    with pytest.raises(CompressError, match="have no latency yet"):
        LatencyTable.load(out)


# ---------------------------------------------------------------- the front


def test_the_front_holds_exactly_the_undominated_points():
    rng = random.Random(0)
    points = [(rng.uniform(1, 20), rng.uniform(0, 1)) for _ in range(60)] + [(5.0, 0.5), (5.0, 0.5)]
    front = pareto_front(points, cost=lambda p: p[0], quality=lambda p: p[1])
    for point in points:
        dominated = any(dominates(o[0], o[1], point[0], point[1]) for o in points)
        assert (point in front) == (not dominated)
    assert [p[0] for p in front] == sorted(p[0] for p in front)
    assert dominates(1, 2, 1, 1) and not dominates(1, 1, 1, 1) and not dominates(1, 1, 2, 2)


def test_search_keeps_the_budgets_and_writes_an_undominated_front(cache_env, small_spaces, teacher_folder, tmp_path):
    root = cache_env
    image, text, _ = small_spaces
    image_budget = max(latency(root, c) for c in image.candidates) * 1.01
    text_latencies = sorted(latency(root, c) for c in text.candidates)
    text_budget = (text_latencies[-2] + text_latencies[-1]) / 2  # leaves out the slowest text tower
    sizes = sorted(
        i.measurement.pte_mb + t.measurement.pte_mb
        for i in (lowered_member(root, c) for c in image.candidates)
        for t in (lowered_member(root, c) for c in text.candidates)
        if latency(root, t.candidate) <= text_budget
    )
    budgets = Budgets(image_budget, text_budget, sizes[-1] - 1e-3)  # and the largest of the remaining pairs
    teacher = load_demo_teacher(teacher_folder)

    def run(out):
        return run_search(
            budgets, image, text, teacher, out, proxy=TINY_PROXY, latency_cache=LatencyCache(), proxy_cache=ProxyCache()
        )

    result = run(tmp_path / "search")

    slowest = [r for r in result.text if r.latency_ms > text_budget]
    assert len(slowest) == 1 and slowest[0].status.startswith("over") and slowest[0].proxy is None
    assert len(result.pairs) == sum(1 for size in sizes if size <= budgets.size_mb) < len(sizes)
    for pair in result.pairs:
        assert pair.image.latency_ms <= image_budget and pair.text.latency_ms <= text_budget
        assert pair.size_mb <= budgets.size_mb
        assert pair.image.latency_source == pair.text.latency_source == "runtime"
    for member in result.front:
        assert not any(dominates(p.latency_ms, p.quality, member.latency_ms, member.quality) for p in result.pairs)
    for pair in result.pairs:  # everything off the front is dominated by a front member
        assert pair in result.front or any(
            dominates(f.latency_ms, f.quality, pair.latency_ms, pair.quality) for f in result.front
        )
    assert result.chosen is max(result.front, key=lambda p: p.quality)
    for tower in (result.chosen.image, result.chosen.text):
        assert tower.proxy.val_loss > 0 and 0 <= tower.proxy.zero_shot <= 1

    report = json.loads(result.paths["json"].read_text(encoding="utf-8"))
    assert [(p["image"], p["text"]) for p in report["front"]] == [(p.image.name, p.text.name) for p in result.front]
    assert result.paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    config = read_student_config(result.paths["student"])
    assert student_section({"student": str(result.paths["student"])}) == config
    captions = [caption for caption, _ in open_demo("train", size=200).captions()]
    train_tokenizer(captions, tmp_path / "tokenizer.model", vocab_size=1000)
    student = compress.build_student({**config, "tokenizer": str(tmp_path / "tokenizer.model")})
    assert student.image_tower.model_name == result.chosen.image.candidate.resolved["model"]
    assert student.image_size == result.chosen.image.candidate.resolved["image_size"]
    assert len(student.text_tower.layers) == result.chosen.text.candidate.resolved["layers"]

    # a second search reads both caches and finds the same front
    again = run(tmp_path / "again")
    assert all(r.cache_hit for r in again.image + again.text)
    assert all(r.proxy_cache_hit for r in again.image + again.text if r.proxy is not None)
    assert [p.to_dict() for p in again.front] == [p.to_dict() for p in result.front]

    # with a phone's latency table the budgets apply to the table's latencies
    ops = {s for c in image.candidates + text.candidates for s in lowered_member(root, c).measurement.ops}
    table = LatencyTable.from_dict({"device": "phone", "ops": {s: 0.0001 for s in ops}})
    priced = run_search(
        Budgets(1.0, 1.0, None),
        image,
        text,
        teacher,
        tmp_path / "lut",
        proxy=TINY_PROXY,
        lut=table,
        latency_cache=LatencyCache(),
        proxy_cache=ProxyCache(),
    )
    for r in priced.image + priced.text:
        assert r.latency_source == "lut" and r.status == "ok"
        assert r.latency_ms == pytest.approx(0.0001 * sum(r.measurement.ops.values()))


def test_the_command_writes_the_front_and_the_chosen_student(cache_env, small_spaces, teacher_folder, tmp_path, capsys):
    _, _, files = small_spaces
    proxy = [
        "--proxy-steps",
        "2",
        "--proxy-batch-size",
        "4",
        "--proxy-train-samples",
        "8",
        "--proxy-val-samples",
        "4",
        "--proxy-zero-shot-count",
        "4",
    ]
    code = main(
        [
            "search",
            "--space-image",
            str(files["image"]),
            "--space-text",
            str(files["text"]),
            *proxy,
            "--teacher",
            f"demo:{teacher_folder}",
            "--pick",
            "fastest",
            "--out",
            str(tmp_path / "cli"),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "cli" / "search.json").read_text(encoding="utf-8"))
    fastest = min(report["front"], key=lambda p: p["latency_ms"])
    assert (report["chosen"]["image"], report["chosen"]["text"]) == (fastest["image"], fastest["text"])
    assert report["budgets"] == {"image_latency_ms": None, "text_latency_ms": None, "size_mb": None}
    assert read_student_config(tmp_path / "cli" / "chosen_student.yaml") == report["chosen"]["student_config"]
    assert "recipe dc_clip --set student=" in capsys.readouterr().out


def test_budgets_that_exclude_everything_are_one_clear_error(cache_env, small_spaces, tmp_path, capsys):
    _, _, files = small_spaces
    # the teacher spec names a file, which fails at once if anything tried to load it
    spaces = [
        "--space-image",
        str(files["image"]),
        "--space-text",
        str(files["text"]),
        "--out",
        str(tmp_path),
        "--teacher",
        f"demo:{files['image']}",
    ]
    code = main(["search", *spaces, "--image-latency-ms", "0.001"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    # which member is fastest depends on the machine and its load; the smallest depends on parameters alone
    found = re.search(
        r"no image candidate meets the budgets \(--image-latency-ms 0\.001\): the fastest, (\S+), takes [\d.]+ ms "
        r"and the smallest, mobilevitv2_050@64, is [\d.]+ MB",
        err,
    )
    assert found, err
    assert found.group(1) in {c.name for c in small_spaces[0].candidates}

    code = main(["search", *spaces, "--size-mb", "8"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no image + text pair fits --size-mb 8: the smallest pair within the latency budgets is" in err


class FakeTower:
    def __init__(self, ms, mb, val_loss=0.5, zero_shot=0.5):
        self.latency_ms, self.name = ms, f"t{ms}"
        self.measurement = SimpleNamespace(pte_mb=mb, params=1)
        self.proxy = SimpleNamespace(val_loss=val_loss, zero_shot=zero_shot)
        self.candidate = SimpleNamespace(embed_dim=8)


def test_pair_quality_follows_rank_by():
    image, text = FakeTower(1, 1, val_loss=0.25, zero_shot=0.5), FakeTower(1, 1, val_loss=0.5, zero_shot=0.75)
    assert pair_quality(image, text, "val_loss") == -0.75
    assert pair_quality(image, text, "zero_shot") == 0.625
    assert [p.size_mb for p in pair_candidates([image], [text, FakeTower(2, 9)], 5.0, "val_loss")] == [2]


def test_pick_rules_choose_from_the_front():
    front = [
        Pair(FakeTower(1, 9), FakeTower(1, 9), 0.1),
        Pair(FakeTower(5, 1), FakeTower(5, 1), 0.5),
        Pair(FakeTower(9, 5), FakeTower(9, 5), 0.9),
    ]
    assert pick(front, "best") is front[2] and pick(front, "fastest") is front[0] and pick(front, "smallest") is front[1]
    with pytest.raises(CompressError, match="--pick must be one of"):
        pick(front, "random")


def test_a_changed_image_layout_is_its_own_candidate():
    space = parse_space(
        {
            "family": "image",
            "embed_dim": 256,
            "candidates": [
                {"model": "mobilevit_xxs", "image_size": 224},
                {"model": "mobilevit_xxs", "image_size": 224, "width": 0.75, "stage_strides": [2, 2, 2, 2, 1], "act": "relu"},
            ],
        }
    )
    plain, changed = space.candidates
    assert (plain.name, changed.name) == ("mobilevit_xxs@224", "mobilevit_xxs-w0.75-s22221-relu@224")
    assert plain.architecture != changed.architecture  # measured and cached apart
    with pytest.raises(CompressError, match="stage_strides"):
        parse_space(
            {
                "family": "image",
                "embed_dim": 256,
                "candidates": [{"model": "mobilevit_xxs", "image_size": 224, "stage_strides": [2]}],
            }
        )
