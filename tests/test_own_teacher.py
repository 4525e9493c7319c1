"""A user's own teacher: the README's examples run as written, and what an object lacks is one clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from distill_helpers import ColourPairs, RandomTeacher, make_student

from compress.cache import build_cache
from compress.compose import EnsembleTeacher, ImageTextTeacher
from compress.distill import Distiller
from compress.errors import CompressError
from compress.eval.runner import evaluate_models
from compress.protocols import OwnTeacher, check_encoder, check_student, check_teacher

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_section_code(title: str) -> list[str]:
    """The ```python blocks of one `## title` section of the README, in order."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert match, f"README has no section {title!r}"
    return re.findall(r"^```python\n(.*?)^```", match.group(1), flags=re.S | re.M)


def test_the_readme_own_teacher_examples_run_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMPRESS_CACHE_DIR", str(tmp_path / "cache"))
    blocks = readme_section_code("Your own teacher")
    assert len(blocks) == 2
    namespace: dict = {"__name__": "readme_example"}
    for block in blocks:
        exec(compile(block, f"{README}:Your own teacher", "exec"), namespace)

    report = namespace["report"]
    assert report["teacher"] == {
        "name": "colour-teacher",
        "fingerprint": "colour-teacher|v1",
        "widths": {"image": 32, "text": 32},
    }
    assert report["completed_stages"] == ["distill", "align"]
    assert (tmp_path / "runs" / "own-teacher" / "report.json").is_file()
    output = capsys.readouterr().out
    assert "colour-image-teacher ['image']" in output and "caption-teacher ['text']" in output


class Minimal:
    """The least a teacher can be: a fingerprint and one encode method."""

    fingerprint = "minimal|v1"

    def __init__(self, dim: int = 12):
        self.dim, self.probes = dim, 0

    def encode_images(self, images):
        self.probes += 1
        return F.normalize(torch.ones(len(images), self.dim), dim=-1)


def test_defaults_fill_in_what_the_protocol_allows_without_touching_the_object():
    teacher = Minimal()
    seen = check_teacher(teacher, "test")
    assert isinstance(seen, OwnTeacher) and seen.wrapped is teacher
    assert (seen.name, seen.embed_dim, seen.has_image_tower, seen.has_text_tower) == ("Minimal", 12, True, False)
    assert teacher.probes == 1  # embed_dim came from exactly one probe
    assert not hasattr(teacher, "embed_dim") and not hasattr(teacher, "has_image_tower")
    assert seen.dim == 12  # other attributes are the object's own
    with pytest.raises(CompressError, match="teacher Minimal has no text tower"):
        seen.encode_texts(["a"], "en")
    complete = RandomTeacher()
    assert check_teacher(complete, "test") is complete  # nothing to fill in: the object itself
    assert check_teacher(seen, "again") is seen


def test_everything_a_teacher_lacks_is_listed_in_one_error():
    class Empty:
        pass

    with pytest.raises(CompressError) as error:
        check_teacher(Empty(), "Distiller teacher")
    message = str(error.value)
    assert message.startswith("Distiller teacher: the teacher Empty lacks")
    assert "`fingerprint`" in message and "`encode_images(images)` or `encode_texts(texts, lang)`" in message

    class NoLanguages:
        fingerprint = "x"

        def encode_texts(self, texts, lang):
            return torch.ones(len(texts), 4)

    with pytest.raises(CompressError, match="lacks `languages`"):
        check_teacher(NoLanguages(), "test")

    class Declared:
        fingerprint, has_image_tower, has_text_tower = "x", True, False

    with pytest.raises(CompressError, match=r"lacks `encode_images\(images\)` \(it declares has_image_tower\)"):
        check_teacher(Declared(), "test")

    class BadProbe(Minimal):
        def encode_images(self, images):
            return torch.ones(12)

    with pytest.raises(CompressError, match=r"BadProbe.encode_images on one input returned shape \(12,\)"):
        check_teacher(BadProbe(), "test")


@pytest.mark.parametrize("entry", ["distiller", "evaluate", "cache", "compose"])
def test_each_entry_point_refuses_an_incomplete_teacher_before_any_work(tmp_path, entry):
    class HalfTeacher:  # what a user might write first: no fingerprint, no languages
        name = "half"

        def encode_texts(self, texts, lang):
            return torch.ones(len(texts), 4)

    with pytest.raises(CompressError, match="HalfTeacher lacks `fingerprint`.*; `languages`"):
        if entry == "distiller":
            Distiller(HalfTeacher(), make_student(), data=ColourPairs(8), run_dir=tmp_path / "run", progress=False)
        elif entry == "cache":
            build_cache(HalfTeacher(), ColourPairs(8), tmp_path / "cache", progress=False)
        elif entry == "compose":
            ImageTextTeacher(image=RandomTeacher(embed_dim=4), text=HalfTeacher())
        else:
            check_teacher(HalfTeacher(), "evaluate")  # evaluation asks for encoders, see below
    if entry == "evaluate":
        with pytest.raises(
            CompressError,
            match=r"evaluate model 'half': the encoder HalfTeacher lacks "
            r"`encode_images\(images\)`",
        ):
            evaluate_models({"half": HalfTeacher()}, [])
    assert not (tmp_path / "cache").exists()


def test_an_own_teacher_trains_a_student_and_composes(tmp_path):
    report = Distiller(
        Minimal(dim=16),
        make_student(embed_dim=16),
        data=ColourPairs(16),
        run_dir=tmp_path / "run",
        steps={"distill": 2},
        batch_size=8,
        progress=False,
    ).fit("distill")
    assert report["teacher"] == {"name": "Minimal", "fingerprint": "minimal|v1", "widths": {"image": 16, "text": None}}
    assert all("image" in e and "text" not in e for e in report["loss_log"])
    ensemble = EnsembleTeacher([Minimal(dim=16), Minimal(dim=16)])
    assert ensemble.embed_dim == 16 and ensemble.has_image_tower and not ensemble.has_text_tower
    assert ensemble.model_id == "Minimal+Minimal"


def test_a_student_missing_parts_is_one_error_listing_them():
    class NotAModule:
        embed_dim = 8

    with pytest.raises(CompressError) as error:
        check_student(NotAModule(), "Distiller student")
    message = str(error.value)
    for part in ("torch.nn.Module", "`save_pretrained(folder)`", "an `image_tower` or a `text_tower` module"):
        assert part in message
    student = make_student()
    assert check_student(student, "test") is student
    broken = type("NoPreprocess", (type(student),), {"preprocess_images": None})
    with pytest.raises(CompressError, match=r"lacks `preprocess_images\(images\)`"):
        check_student(broken(), "test")
    assert check_encoder(student, "test") is student
