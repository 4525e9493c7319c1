"""A quality proxy for one candidate tower: a short stage-1 distillation run against the teacher.

Every candidate of a search trains on the same small subset of a registered data source, the demo
world by default (rendered once, teacher embeddings computed once), for the same number of steps,
from the same seed, through the same `Distiller` the real recipe uses. Two numbers come out:

- `val_loss`: the stage-1 feature loss on the source's held-out samples (lower is better);
- `zero_shot`: mean top-1 on the source's zero-shot tasks in English and Chinese, with the
  student tower (through its stage-1 adapter) on one side and the teacher's other tower on the
  other side, since a single distilled tower already lives in the teacher's space.

Results are cached on disk (`<cache_dir>/search/proxy/<key>.json`) under the candidate's options,
the teacher's fingerprint and the proxy settings.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch.utils.data import Dataset

from compress.errors import CompressError
from compress.files import file_sha256
from compress.paths import cache_dir
from compress.search.settings import ProxySettings
from compress.search.space import STUDENT_FAMILY, Candidate
from compress.search.store import JsonStore

PROXY_SOURCE = "demo"  # the registered data source proxy runs train and are scored on
PROXY_PROTOCOL = 1  # bump when the proxy's recipe changes, so cached results are not reused
TARGET_BATCH = 64


@dataclass
class ProxyResult:
    val_loss: float
    zero_shot: float
    zero_shot_by_task: dict[str, float]
    train_seconds: float
    vocab_size: int | None = None  # the text tower's vocabulary in the proxy run (the subset caps it)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProxyResult:
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


class SampleList(Dataset):
    """Samples held in memory, with the skip bookkeeping every data source carries (nothing is skipped)."""

    def __init__(self, samples: list, name: str):
        self.samples, self.name = list(samples), name
        self.skipped: Counter = Counter()
        self.skip_log: list = []

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        return self.samples[index]


class PrecomputedTargets:
    """`targets(samples)` for the Distiller from teacher embeddings computed once, looked up by sample key."""

    def __init__(self, rows: dict[str, dict[str, torch.Tensor | None]]):
        self.rows = rows

    def __call__(self, samples) -> dict[str, torch.Tensor | None]:
        missing = [s.key for s in samples if s.key not in self.rows]
        if missing:
            raise CompressError(f"no teacher embedding for sample {missing[0]!r} in the proxy subset")
        out = {}
        for tower in ("image", "text"):
            values = [self.rows[s.key][tower] for s in samples]
            out[tower] = None if values[0] is None else torch.stack(values)
        return out


class ProxyData:
    """The data-source subset every proxy run of a search shares, with its teacher embeddings and tokenizers.

    The source (by default the demo world) must offer zero-shot tasks, which score each candidate.
    Nothing is rendered or embedded until the first proxy run needs it, so a search whose proxy
    results all come from the cache never touches the teacher.
    """

    def __init__(self, teacher, settings: ProxySettings, workdir: str | Path, source: str = PROXY_SOURCE):
        from compress.data.sources import get_source, zero_shot_tasks

        self.teacher, self.settings, self.workdir, self.source = teacher, settings, Path(workdir), source
        data_source = get_source(source)
        self.tasks = zero_shot_tasks(source)
        options = {"image_size": settings.image_size, "seed": settings.seed}
        self._train_source = data_source.open("train", size=settings.train_samples, **options)
        self._val_source = data_source.open("val", size=settings.val_samples, **options)
        self.description = {
            "source": source,
            "version": getattr(data_source, "version", None),
            "train": self._train_source.digest(),
            "val": self._val_source.digest(),
        }
        self._prepared: tuple[SampleList, SampleList, PrecomputedTargets] | None = None
        self._tokenizers: dict[int, Path] = {}

    def _prepare(self) -> tuple[SampleList, SampleList, PrecomputedTargets]:
        if self._prepared is None:
            from compress.distill.targets import TeacherTargets

            train = SampleList([self._train_source[i] for i in range(len(self._train_source))], f"{self.source} train subset")
            val = SampleList([self._val_source[i] for i in range(len(self._val_source))], f"{self.source} val subset")
            online = TeacherTargets(self.teacher)
            rows: dict[str, dict[str, torch.Tensor | None]] = {}
            samples = train.samples + val.samples
            for start in range(0, len(samples), TARGET_BATCH):
                chunk = samples[start : start + TARGET_BATCH]
                embedded = online(chunk)
                for row, sample in enumerate(chunk):
                    rows[sample.key] = {
                        t: (v[row].detach().float().cpu() if v is not None else None) for t, v in embedded.items()
                    }
            self._prepared = (train, val, PrecomputedTargets(rows))
        return self._prepared

    @property
    def train(self) -> SampleList:
        return self._prepare()[0]

    @property
    def val(self) -> SampleList:
        return self._prepare()[1]

    @property
    def targets(self) -> PrecomputedTargets:
        return self._prepare()[2]

    def tokenizer(self, vocab_size: int) -> Path:
        """A SentencePiece tokenizer trained on the subset's training captions, as the recipe trains one."""
        if vocab_size not in self._tokenizers:
            from compress.search.space import family_towers

            path = self.workdir / "tokenizers" / f"v{vocab_size}" / "tokenizer.model"
            captions = [caption for caption, _lang in self._train_source.captions()]
            family_towers().train_tokenizer(captions, path, vocab_size)
            self._tokenizers[vocab_size] = path
        return self._tokenizers[vocab_size]


class TowerWithTeacher:
    """An encoder for zero-shot scoring: the student's tower (through its stage-1 adapter) for one
    modality and the teacher for the other."""

    def __init__(self, student, adapter: torch.nn.Module, teacher, family: str):
        self.student, self.adapter, self.teacher, self.family = student, adapter, teacher, family
        self.languages = tuple(getattr(teacher, "languages", ("en", "zh")))
        self.name = f"{family} student + teacher"

    @torch.no_grad()
    def encode_images(self, images):
        if self.family != "image":
            return self.teacher.encode_images(images).float()
        pixels = self.student.preprocess_images(images).to(self.student.device)
        return F.normalize(self.adapter(self.student.image_tower(pixels)).float(), dim=-1).cpu()

    @torch.no_grad()
    def encode_texts(self, texts, lang):
        if self.family != "text":
            return self.teacher.encode_texts(texts, lang).float()
        ids = self.student.tokenize(texts).to(self.student.device)
        return F.normalize(self.adapter(self.student.text_tower(ids)).float(), dim=-1).cpu()


def student_config(candidate: Candidate, tokenizer: str | Path | None = None) -> dict[str, Any]:
    """The `students.bilingual` config of a single-tower student made of this candidate."""
    options = dict(candidate.options)
    config: dict[str, Any] = {"embed_dim": candidate.embed_dim}
    if candidate.family == "image":
        config.update(image=options, text=None)
    else:
        vocab_size = candidate.resolved["vocab_size"]
        options.pop("vocab_size", None)
        config.update(image=None, text=options, tokenizer_vocab_size=vocab_size)
        if tokenizer is not None:
            config["tokenizer"] = str(tokenizer)
    return config


def run_proxy(candidate: Candidate, data: ProxyData, run_dir: str | Path) -> ProxyResult:
    """Train the candidate's tower for `steps` against the teacher and score it."""
    from compress.api import build_student
    from compress.distill import Distiller
    from compress.eval.tasks import task_accuracies

    settings = data.settings
    tokenizer = data.tokenizer(candidate.resolved["vocab_size"]) if candidate.family == "text" else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        student = build_student({"family": STUDENT_FAMILY, **student_config(candidate, tokenizer)})
    distiller = Distiller(
        data.teacher,
        student,
        data=data.train,
        val_data=data.val,
        run_dir=run_dir,
        targets=data.targets,
        stage1_loss=settings.loss,
        lr=settings.lr,
        batch_size=settings.batch_size,
        steps={"distill": settings.steps},
        seed=settings.seed,
        checkpoint_every=settings.steps,
        keep_checkpoints=1,
        device=settings.device,
        progress=False,
        console=Console(quiet=True),
    )
    started = time.perf_counter()
    report = distiller.fit("distill")
    seconds = time.perf_counter() - started
    val_loss = report["stages"]["distill"]["epochs"][-1]["val_loss"]
    if val_loss is None:
        raise CompressError(f"{candidate.family} candidate {candidate.name}: the proxy run produced no validation loss")
    encoder = TowerWithTeacher(student, distiller.objectives.adapters[candidate.family], data.teacher, candidate.family)
    scores = task_accuracies(encoder, data.tasks, count=settings.zero_shot_count, image_size=settings.image_size)
    by_task = {f"{task}/{lang}": float(acc) for (task, lang), acc in scores.items()}
    return ProxyResult(
        val_loss=float(val_loss),
        zero_shot=sum(by_task.values()) / len(by_task),
        zero_shot_by_task=by_task,
        train_seconds=round(seconds, 2),
        vocab_size=student.tokenizer.vocab_size if candidate.family == "text" else None,
    )


class ProxyCache:
    """Proxy results on disk, keyed by candidate options, teacher fingerprint, data and settings."""

    def __init__(self, folder: str | Path | None = None):
        self.store = JsonStore(Path(folder) if folder is not None else cache_dir() / "search" / "proxy")

    def key(self, candidate: Candidate, data: ProxyData) -> dict[str, Any]:
        return {
            "candidate": {
                "family": candidate.family,
                "embed_dim": candidate.embed_dim,
                "options": candidate.resolved,
                "checkpoint_sha256": _checkpoint_digest(candidate),
            },
            "teacher": getattr(data.teacher, "fingerprint", None),
            "data": data.description,
            "settings": {k: v for k, v in data.settings.to_dict().items() if k != "device"},
            "torch": torch.__version__,
            "protocol": PROXY_PROTOCOL,
        }

    def get(self, candidate: Candidate, data: ProxyData) -> ProxyResult | None:
        if getattr(data.teacher, "fingerprint", None) is None:
            return None  # a teacher without a fingerprint cannot be told apart: never reuse its results
        record = self.store.get(self.key(candidate, data))
        try:
            return ProxyResult.from_dict(record["result"]) if record else None
        except (KeyError, TypeError):
            return None

    def put(self, candidate: Candidate, data: ProxyData, result: ProxyResult) -> None:
        if getattr(data.teacher, "fingerprint", None) is not None:
            self.store.put(self.key(candidate, data), {"candidate": candidate.name, "result": result.to_dict()})


def _checkpoint_digest(candidate: Candidate) -> str | None:
    checkpoint = candidate.resolved.get("checkpoint")
    if not checkpoint:
        return None
    return file_sha256(Path(checkpoint).expanduser())


def proxy_candidate(
    candidate: Candidate, data: ProxyData, cache: ProxyCache | None, run_dir: str | Path, refresh: bool = False
) -> tuple[ProxyResult, bool]:
    """(result, cache hit) of the candidate's proxy run."""
    if cache is not None and not refresh:
        cached = cache.get(candidate, data)
        if cached is not None:
            return cached, True
    try:
        result = run_proxy(candidate, data, run_dir)
    except CompressError as exc:
        raise CompressError(f"proxy run of {candidate.family} candidate {candidate.name}: {exc}") from None
    if cache is not None:
        cache.put(candidate, data, result)
    return result, False
