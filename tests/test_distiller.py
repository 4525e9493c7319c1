"""The Distiller: both stages learn, adapters, partial teachers, the targets seam, the run folder."""

from __future__ import annotations

import json

import pytest
import torch
from distill_helpers import ColourPairs, RandomTeacher, make_student
from torch import nn

from compress.distill import Distiller, TeacherTargets
from compress.errors import CompressError


def _distiller(tmp_path, teacher=None, student=None, data=None, **options):
    settings = dict(batch_size=8, lr=1e-2, checkpoint_every=1000, progress=False, seed=0)
    settings.update(options)
    return Distiller(
        teacher or RandomTeacher(embed_dim=24),
        student or make_student(embed_dim=16),
        data=data or ColourPairs(48),
        run_dir=tmp_path / "run",
        **settings,
    )


def test_both_stages_lower_the_loss_and_leave_a_complete_run_folder(tmp_path):
    distiller = _distiller(
        tmp_path,
        val_data=ColourPairs(16, seed=1),
        epochs={"distill": 4, "align": 5},
        stage2_losses={"infonce": 1.0, "feature": 0.5, "affinity": 0.5},
    )
    report = distiller.fit("both")

    distill, align = report["stages"]["distill"], report["stages"]["align"]
    assert distill["steps"] == 4 * 6 and align["steps"] == 5 * 6 and report["global_step"] == 54
    distill_epochs = [e["mean_loss"] for e in distill["epochs"]]
    align_epochs = [e["mean_loss"] for e in align["epochs"]]
    assert distill_epochs[-1] < 0.5 * distill_epochs[0], distill_epochs
    assert align_epochs[-1] < 0.85 * align_epochs[0], align_epochs
    assert all(e["val_loss"] is not None for e in distill["epochs"] + align["epochs"])

    # The per-step log: one entry per global step, each stage's terms recorded.
    log = report["loss_log"]
    assert [e["global_step"] for e in log] == list(range(1, 55))
    assert {"image", "text"} <= set(log[0]) and log[0]["stage"] == "distill"
    assert {"infonce", "feature_image", "feature_text", "affinity"} <= set(log[-1]) and log[-1]["stage"] == "align"
    assert log[-1]["loss"] == pytest.approx(
        log[-1]["infonce"] + log[-1]["feature_image"] + log[-1]["feature_text"] + log[-1]["affinity"], rel=1e-5
    )
    assert report["logit_scale"] != pytest.approx(1 / 0.07)  # the temperature was learned

    run = tmp_path / "run"
    on_disk = json.loads((run / "report.json").read_text())
    for key in (
        "config",
        "stages",
        "epoch_losses",
        "loss_log",
        "skipped",
        "timings",
        "teacher",
        "student",
        "adapters",
        "global_step",
        "logit_scale",
    ):
        assert key in on_disk, key
    assert on_disk["epoch_losses"]["distill"] == distill_epochs
    assert on_disk["config"]["stage2_losses"] == {"infonce": 1.0, "feature": 0.5, "affinity": 0.5}
    assert set(on_disk["timings"]["train_seconds"]) == {"distill", "align"}
    assert (run / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "student" / "student.json").is_file() and (run / "student" / "model.safetensors").is_file()
    assert (run / "adapters.safetensors").is_file()
    assert len(list((run / "checkpoints").iterdir())) == 2  # epoch-end checkpoints, the newest two kept


def test_adapters_map_the_student_width_to_the_teacher_width(tmp_path):
    wide = _distiller(tmp_path, teacher=RandomTeacher(embed_dim=24), student=make_student(embed_dim=16))
    for tower in ("image", "text"):
        adapter = wide.objectives.adapters[tower]
        assert isinstance(adapter, nn.Linear) and (adapter.in_features, adapter.out_features) == (16, 24)
    same = _distiller(tmp_path, teacher=RandomTeacher(embed_dim=16), student=make_student(embed_dim=16))
    assert all(isinstance(m, nn.Identity) for m in same.objectives.adapters.values())


@pytest.mark.parametrize("present", ["image", "text"])
def test_a_teacher_with_one_tower_trains_only_that_student_tower(tmp_path, present):
    teacher = RandomTeacher(embed_dim=24, image=present == "image", text=present == "text")
    student = make_student(embed_dim=16)
    absent = "text" if present == "image" else "image"
    before = {k: v.clone() for k, v in getattr(student, f"{absent}_tower").state_dict().items()}
    trained_before = {k: v.clone() for k, v in getattr(student, f"{present}_tower").state_dict().items()}
    distiller = _distiller(tmp_path, teacher=teacher, student=student, steps={"distill": 4})
    assert set(distiller.objectives.adapters) == {present}

    report = distiller.fit("distill")

    assert {kind for kind, _, _ in teacher.calls} == {present}
    assert all(present in e and absent not in e for e in report["loss_log"])
    after = getattr(student, f"{absent}_tower").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    trained = getattr(student, f"{present}_tower").state_dict()
    assert any(not torch.equal(trained_before[k], trained[k]) for k in trained_before)
    assert report["stages"]["distill"]["steps"] == 4
    assert report["teacher"]["widths"] == {present: 24, absent: None}


def test_a_student_with_one_tower_is_distilled_on_it_and_cannot_be_aligned(tmp_path):
    student = make_student(embed_dim=16)
    student.has_text_tower = False
    teacher = RandomTeacher(embed_dim=24)
    distiller = _distiller(tmp_path, teacher=teacher, student=student, steps=2)
    assert set(distiller.objectives.adapters) == {"image"}
    report = distiller.fit("distill")
    assert all("image" in e and "text" not in e for e in report["loss_log"])
    assert {kind for kind, _, _ in teacher.calls} == {"image"}  # no teacher text embeddings wasted
    with pytest.raises(CompressError, match="needs a student with both"):
        distiller.fit("align")


def test_affinity_needs_a_teacher_with_both_towers(tmp_path):
    with pytest.raises(CompressError, match="affinity.*both"):
        _distiller(tmp_path, teacher=RandomTeacher(embed_dim=24, image=False), stage2_losses=("infonce", "affinity"))


def test_teacher_targets_embed_captions_once_per_language_in_batch_order():
    teacher = RandomTeacher(embed_dim=8)
    samples = [ColourPairs(6)[i] for i in range(6)]  # languages alternate en, zh, en, ...
    targets = TeacherTargets(teacher)(samples)
    text_calls = [call for call in teacher.calls if call[0] == "text"]
    assert sorted(text_calls) == [("text", 3, "en"), ("text", 3, "zh")]
    one_by_one = torch.cat([teacher.encode_texts([s.caption], s.lang) for s in samples])
    assert torch.allclose(targets["text"], one_by_one, atol=1e-6)
    assert targets["image"].shape == (6, 8)
    assert TeacherTargets(RandomTeacher(embed_dim=8, image=False))(samples)["image"] is None


def test_a_targets_callable_replaces_the_online_teacher(tmp_path):
    teacher = RandomTeacher(embed_dim=24)
    data = ColourPairs(16)
    stored = {s.key: TeacherTargets(teacher)([s]) for s in (data[i] for i in range(len(data)))}
    teacher.calls.clear()

    def from_store(samples):
        return {tower: torch.cat([stored[s.key][tower] for s in samples]) for tower in ("image", "text")}

    distiller = _distiller(tmp_path, teacher=teacher, data=data, targets=from_store, steps={"distill": 3})
    report = distiller.fit("distill")
    assert teacher.calls == []
    assert report["stages"]["distill"]["steps"] == 3


def test_skipped_samples_are_counted_in_the_report(tmp_path):
    data = ColourPairs(24, bad=(1, 5, 9))
    report = _distiller(tmp_path, data=data, epochs=2).fit("distill")
    assert report["skipped"]["train"] == {"total": 3, "by_reason": {"corrupt_image": 3}}
    assert [e["left_out"] for e in report["stages"]["distill"]["epochs"]] == [3, 3]
    assert [e["samples"] for e in report["stages"]["distill"]["epochs"]] == [21, 21]


def test_data_with_every_sample_skipped_is_an_error_not_an_endless_loop(tmp_path):
    with pytest.raises(CompressError, match="all 8 samples read were skipped"):
        _distiller(tmp_path, data=ColourPairs(8, bad=tuple(range(8))), steps=5).fit("distill")


def test_infonce_only_alignment_never_calls_the_teacher(tmp_path):
    teacher = RandomTeacher(embed_dim=24)
    report = _distiller(tmp_path, teacher=teacher, steps=3).fit("align")
    assert teacher.calls == []
    assert list(report["stages"]) == ["align"] and report["stages"]["align"]["steps"] == 3


@pytest.mark.parametrize(
    "options, message",
    [
        ({"stage1_loss": "l2"}, "stage1_loss"),
        ({"stage2_losses": ("infonce", "kd")}, "unknown term"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"precision": "bf16", "device": "cpu"}, "needs a GPU"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": {"distil": 2}}, "unknown stage"),
        ({"lr": {"align": -1.0}}, "lr for stage 'align'"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": {"distill": 8, "align": 2.5}}, "batch_size for stage 'align'"),
        ({"loss_options": {"smooth_l1": {"gamma": 1}}}, "bad options"),
        ({"qat": "yes"}, "qat must be true or false"),
        ({"channels_last": 1}, "channels_last must be true or false"),
        ({"log_every": 0}, "log_every must be an integer >= 1"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_error(tmp_path, options, message):
    with pytest.raises(CompressError, match=message):
        _distiller(tmp_path, **options)


@pytest.mark.parametrize("channels_last", [True, False])
def test_the_image_tower_gets_its_pixels_in_the_layout_the_config_asks_for(tmp_path, channels_last):
    student = make_student(embed_dim=16)
    layouts = []
    student.image_tower.register_forward_pre_hook(
        lambda module, args: layouts.append((args[0].is_contiguous(memory_format=torch.channels_last), args[0].is_contiguous()))
    )
    _distiller(tmp_path, student=student, steps=2, channels_last=channels_last).fit("both")

    assert len(layouts) == 4  # two steps of each stage
    # A 3x16x16 batch is either channels-last or plain contiguous, never both.
    assert set(layouts) == ({(True, False)} if channels_last else {(False, True)})


def test_qat_fake_quantizes_the_student_during_alignment_only_and_converts_it_at_the_end(tmp_path):
    from compress.quant import fake_quantized_modules

    seen = []
    student = make_student(embed_dim=16)
    student.image_tower.register_forward_pre_hook(lambda module, args: seen.append(len(fake_quantized_modules(student))))
    distiller = _distiller(tmp_path / "qat", student=student, steps=3, qat=True)
    report = distiller.fit("both")
    plain = _distiller(tmp_path / "plain", steps=3).fit("both")

    assert seen[:3] == [0, 0, 0] and seen[3:] and set(seen[3:]) == {3}  # stage 1 plain, stage 2 fake-quantized
    assert fake_quantized_modules(student) == [] and distiller.qat_layers == 3
    distill_losses = lambda r: [e["loss"] for e in r["loss_log"] if e["stage"] == "distill"]  # noqa: E731
    align_losses = lambda r: [e["loss"] for e in r["loss_log"] if e["stage"] == "align"]  # noqa: E731
    assert distill_losses(report) == distill_losses(plain)  # same start, same stage 1
    assert align_losses(report) != align_losses(plain)  # int8 noise in the forward pass of stage 2
    assert report["config"]["qat"] is True


def test_batch_size_may_differ_per_stage(tmp_path):
    report = _distiller(tmp_path, batch_size={"distill": 4, "align": 12}, epochs=1).fit("both")
    # one epoch of 48 samples: 12 steps of 4 in stage 1, 4 steps of 12 in stage 2
    assert report["stages"]["distill"]["steps"] == 12 and report["stages"]["align"]["steps"] == 4
    assert report["config"]["batch_size"] == {"distill": 4, "align": 12}


def test_loading_in_worker_processes_gives_the_same_run(tmp_path):
    in_process = _distiller(tmp_path / "a", steps=3).fit("distill")
    workers = _distiller(tmp_path / "b", steps=3, num_workers=1).fit("distill")
    assert [e["loss"] for e in workers["loss_log"]] == [e["loss"] for e in in_process["loss_log"]]


def test_a_stage_missing_from_a_per_stage_setting_is_named_when_it_runs(tmp_path):
    distiller = _distiller(tmp_path, epochs={"distill": 1}, steps=None)
    with pytest.raises(CompressError, match="no value for stage 'align'"):
        distiller.fit("align")


def test_unknown_stage_and_missing_data_are_refused(tmp_path):
    with pytest.raises(CompressError, match="unknown stage"):
        _distiller(tmp_path).fit("pretrain")
    with pytest.raises(CompressError, match="training data"):
        Distiller(RandomTeacher(), make_student(), data=None)


def test_the_bilingual_student_trains_on_the_demo_teacher_and_the_demo_world(tmp_path):
    import compress
    from students.tokenizer import train_tokenizer

    teacher = compress.load_teacher(
        {
            "name": "demo",
            "location": str(tmp_path / "teacher"),
            "progress": False,
            "steps": 2,
            "batch_size": 8,
            "image_size": 16,
            "width": 8,
            "text_width": 16,
            "text_layers": 1,
            "text_heads": 2,
            "embed_dim": 16,
            "context_length": 48,
        }
    )
    data = compress.open_data("demo:train", size=16, image_size=64)
    val = compress.open_data("demo:val", size=8, image_size=64)
    tokenizer = tmp_path / "tokenizer.model"
    train_tokenizer([caption for caption, _ in data.captions()], tokenizer, vocab_size=400)
    student = compress.build_student(
        {
            "embed_dim": 12,
            "tokenizer": str(tokenizer),
            "text": {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_length": 16},
        }
    )
    run = tmp_path / "run"
    report = compress.Distiller(
        teacher,
        student,
        data=data,
        val_data=val,
        run_dir=run,
        batch_size=8,
        steps=2,
        lr=1e-2,
        stage2_losses=("infonce", "feature", "affinity"),
        progress=False,
    ).fit("both")

    assert report["global_step"] == 4 and report["completed_stages"] == ["distill", "align"]
    assert report["adapters"]["image"] == {"kind": "linear", "in": 12, "out": 16}
    assert report["teacher"]["fingerprint"] == teacher.fingerprint
    assert all(e["val_loss"] is not None for e in report["stages"]["align"]["epochs"])
    assert report["skipped"]["train"]["total"] == 0
    reloaded = compress.build_student(run / "student")
    caption, lang = data.captions()[0]
    assert torch.equal(reloaded.encode_texts([caption], lang), student.encode_texts([caption], lang))
    image = data[0].image
    assert torch.allclose(reloaded.encode_images([image]), student.encode_images([image]), atol=1e-6)


def test_settings_come_from_one_config_with_validated_keyword_overrides(tmp_path):
    import dataclasses
    import inspect

    from compress.distill import DistillConfig

    config = DistillConfig(lr=5e-3, steps={"distill": 2, "align": 1}, batch_size=8, seed=3)
    distiller = Distiller(
        RandomTeacher(embed_dim=24),
        make_student(embed_dim=16),
        data=ColourPairs(16),
        run_dir=tmp_path / "run",
        config=config,
        steps=3,
        progress=False,
    )
    assert distiller.config.steps == 3 and distiller.config.lr == 5e-3 and distiller.config.seed == 3
    assert config.steps == {"distill": 2, "align": 1}  # the caller's config is not changed
    assert Distiller(RandomTeacher(), make_student(), data=ColourPairs(8), progress=False).config == DistillConfig()

    with pytest.raises(CompressError, match=r"unknown setting\(s\) learning_rate; settings: .*stage1_loss.*lr"):
        Distiller(RandomTeacher(), make_student(), data=ColourPairs(8), learning_rate=1e-3)
    with pytest.raises(CompressError, match="config is a DistillConfig, not dict"):
        Distiller(RandomTeacher(), make_student(), data=ColourPairs(8), config={"lr": 1e-3})
    # The defaults have one home: the Distiller's signature names none of the settings.
    settings = {f.name for f in dataclasses.fields(DistillConfig)}
    assert not settings & set(inspect.signature(Distiller).parameters)
