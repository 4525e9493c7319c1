"""Training and caching on a CUDA GPU: mixed precision (bf16, and fp16 with a loss scaler), the
automatic device and precision choice, resume with the GPU's random streams, the demo teacher
trained on the GPU, and a teacher cache built there matching one built on the CPU."""

from __future__ import annotations

import pytest
import torch
from distill_helpers import ColourPairs, Crash, CrashAfter, RandomTeacher, make_student, resume_distiller
from safetensors.torch import load_file

from compress.cache import TeacherCache, build_cache, distiller_from_cache
from compress.demo_world import open_demo
from compress.distill import Distiller
from compress.distill import checkpoint as ckpt
from students.bilingual import BilingualStudent, build_bilingual_student
from students.tokenizer import train_tokenizer
from teachers.demo import load_demo_teacher

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU: mixed precision and device placement run only there"
)

TINY_TEACHER = dict(
    steps=3, batch_size=8, width=8, embed_dim=16, text_width=16, text_layers=1, text_heads=2, image_size=32, context_length=48
)
TINY_TEXT = {"layers": 1, "hidden": 32, "heads": 2, "ffn": 64, "max_length": 16}


def _autocast_dtypes(module: torch.nn.Module) -> list[torch.dtype]:
    """Records the output dtype of every Linear in `module` while it runs."""
    seen: list[torch.dtype] = []
    for layer in module.modules():
        if isinstance(layer, torch.nn.Linear):
            layer.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_mixed_precision_trains_both_stages_on_the_gpu(tmp_path, precision, dtype):
    student = make_student(embed_dim=16)
    seen = _autocast_dtypes(student)
    distiller = Distiller(
        RandomTeacher(embed_dim=24),
        student,
        data=ColourPairs(48),
        run_dir=tmp_path / "run",
        device="cuda",
        precision=precision,
        batch_size=8,
        epochs={"distill": 4, "align": 5},
        lr=1e-2,
        stage2_losses={"infonce": 1.0, "feature": 0.5},
        progress=False,
    )
    report = distiller.fit("both")

    assert distiller.precision == precision
    assert distiller._scaler.is_enabled() == (precision == "fp16")  # fp16 needs loss scaling, bf16 does not
    assert set(seen) == {dtype}  # every Linear ran in the half type
    assert all(p.device.type == "cuda" and p.dtype == torch.float32 for p in student.parameters())  # fp32 masters
    distill = [e["mean_loss"] for e in report["stages"]["distill"]["epochs"]]
    align = [e["mean_loss"] for e in report["stages"]["align"]["epochs"]]
    assert distill[-1] < 0.5 * distill[0], distill
    assert align[-1] < 0.9 * align[0], align
    saved = load_file(str(tmp_path / "run" / "student" / "model.safetensors"))
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in saved.values())


def test_auto_picks_the_gpu_and_mixed_precision(tmp_path):
    distiller = Distiller(RandomTeacher(), make_student(), data=ColourPairs(8), run_dir=tmp_path / "run", progress=False)
    assert distiller.device.type == "cuda"
    assert distiller.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert next(distiller.student.parameters()).device.type == "cuda"


def test_a_run_stopped_on_the_gpu_resumes_to_the_same_losses(tmp_path):
    """Dropout draws from the GPU's generator: the checkpoint must carry its state for the resumed
    run to draw the same masks (the rest agrees up to the GPU's atomic-add rounding)."""
    reference = resume_distiller(tmp_path / "reference", device="cuda", precision="fp32")
    expected = reference.fit("both")

    run = tmp_path / "run"
    with pytest.raises(Crash):
        resume_distiller(run, data=CrashAfter(ColourPairs(24), 50), device="cuda", precision="fp32").fit("both")
    assert ckpt.latest_checkpoint(run / "checkpoints").name == ckpt.checkpoint_name(8)
    torch.cuda.manual_seed_all(12345)  # whatever the GPU's generator holds now, resume must replace it
    resumed = resume_distiller(run, student_seed=99, device="cuda", precision="fp32")
    report = resumed.fit("both", resume=True)

    got = [e["loss"] for e in report["loss_log"]]
    want = [e["loss"] for e in expected["loss_log"]]
    assert len(got) == len(want)
    torch.testing.assert_close(torch.tensor(got), torch.tensor(want), rtol=1e-4, atol=1e-5)
    for key, value in resumed.trainable.state_dict().items():
        torch.testing.assert_close(value, reference.trainable.state_dict()[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.fixture(scope="module")
def gpu_trained_teacher_dir(tmp_path_factory):
    """A tiny demo teacher trained on the GPU and saved."""
    folder = tmp_path_factory.mktemp("gpu-demo-teacher")
    teacher = load_demo_teacher(folder, progress=False, device="cuda", **TINY_TEACHER)
    assert teacher.trained_now
    return folder


def test_the_demo_teacher_trains_on_the_gpu_and_loads_on_either_device(gpu_trained_teacher_dir):
    on_gpu = load_demo_teacher(gpu_trained_teacher_dir, device="cuda")
    on_cpu = load_demo_teacher(gpu_trained_teacher_dir)
    samples = [open_demo("train", size=8, image_size=32)[i] for i in range(8)]
    images = [s.image for s in samples]
    gpu = on_gpu.encode_images(images)
    assert gpu.device.type == "cuda"
    # cuDNN convolutions may run in TF32 on the GPU
    torch.testing.assert_close(gpu.cpu(), on_cpu.encode_images(images), atol=5e-3, rtol=0)
    torch.testing.assert_close(
        on_gpu.encode_texts([s.caption for s in samples], "en").cpu(),
        on_cpu.encode_texts([s.caption for s in samples], "en"),
        atol=5e-3,
        rtol=0,
    )
    assert on_gpu.fingerprint == on_cpu.fingerprint


def test_a_cache_built_on_the_gpu_matches_the_cpu_cache_and_trains_a_student_there(gpu_trained_teacher_dir, tmp_path):
    data = open_demo("train", size=32, image_size=32)
    plan = dict(batch_size=16, shard_size=16, augmentation="crop-flip", views=2, seed=3, progress=False)
    build_cache(load_demo_teacher(gpu_trained_teacher_dir, device="cuda"), data, tmp_path / "gpu", **plan)
    cpu_teacher = load_demo_teacher(gpu_trained_teacher_dir)
    build_cache(cpu_teacher, data, tmp_path / "cpu", **plan)

    gpu_cache, cpu_cache = TeacherCache(tmp_path / "gpu"), TeacherCache(tmp_path / "cpu")
    assert gpu_cache.fingerprint == cpu_cache.fingerprint and gpu_cache.dataset_digest == cpu_cache.dataset_digest
    assert gpu_cache.keys() == cpu_cache.keys()
    for key in gpu_cache.keys():
        for view in range(2):
            assert gpu_cache.view_params(key, view) == cpu_cache.view_params(key, view)
            gpu, cpu = gpu_cache.embeddings(key, view), cpu_cache.embeddings(key, view)
            for tower in ("image", "text"):  # fp16 storage, and TF32 convolutions on the GPU
                torch.testing.assert_close(
                    gpu[tower].float(), cpu[tower].float(), atol=5e-3, rtol=0, msg=f"{key} view {view} {tower}"
                )

    report = distiller_from_cache(
        gpu_cache,
        make_student(embed_dim=16),
        data,
        teacher=cpu_teacher,
        run_dir=tmp_path / "run",
        device="cuda",
        batch_size=16,
        steps=3,
        progress=False,
    ).fit("distill")
    assert report["stages"]["distill"]["steps"] == 3


def test_the_bilingual_student_trains_in_bf16_on_the_gpu_and_reloads_on_the_cpu(gpu_trained_teacher_dir, tmp_path):
    data = open_demo("train", size=32, image_size=64)
    tokenizer = tmp_path / "tokenizer.model"
    train_tokenizer([caption for caption, _ in data.captions()], tokenizer, vocab_size=1000)
    torch.manual_seed(0)
    student = build_bilingual_student({"embed_dim": 16, "text": TINY_TEXT, "tokenizer": str(tokenizer)})
    seen = _autocast_dtypes(student)
    report = Distiller(
        load_demo_teacher(gpu_trained_teacher_dir, device="cuda"),
        student,
        data=data,
        run_dir=tmp_path / "run",
        device="cuda",
        precision="bf16",
        batch_size=16,
        steps={"distill": 4, "align": 2},
        stage2_losses={"infonce": 1.0, "affinity": 1.0},
        progress=False,
    ).fit("both")
    assert report["global_step"] == 6
    assert torch.bfloat16 in seen

    reloaded = BilingualStudent.from_pretrained(tmp_path / "run" / "student")
    student.eval()
    images = [data[i].image for i in range(4)]
    texts = [data[i].caption for i in range(4)]
    # the GPU's convolutions may run in TF32
    torch.testing.assert_close(student.encode_images(images).cpu(), reloaded.encode_images(images), atol=5e-3, rtol=0)
    torch.testing.assert_close(student.encode_texts(texts, "en").cpu(), reloaded.encode_texts(texts, "en"), atol=5e-3, rtol=0)
