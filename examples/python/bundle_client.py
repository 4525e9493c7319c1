"""Reference client for a compress bundle (schema version 2): exactly what the phone apps do, in plain Python.

It reads nothing but the bundle folder and uses nothing but numpy, Pillow, sentencepiece and the
ExecuTorch runtime (whose Python API takes torch tensors). It does not import compress. The
contract it follows is docs/bundle-format.md.

    python examples/python/bundle_client.py --bundle runs/dc_clip/bundle --image cat.jpg --labels demo-shape --lang zh
    python examples/python/bundle_client.py --bundle runs/dc_clip/bundle --check-golden

Steps, as manifest.json describes them:
1. verify: format and schema version; every path stays inside the folder; every listed file has
   its size and sha256; nothing unlisted and no symbolic link (an app does this after download);
2. image: EXIF orientation, transparency on white, RGB, bilinear resize (shorter side to
   `image.size`, centre crop; or a squash), bytes / 255, NCHW float32 [1, 3, S, S]; the model
   does (x - mean) / std itself;
3. text: SentencePiece pieces of the raw string, [bos] + first max_length-2 pieces + [eos], pad
   with pad_id to max_length, int64 [1, L];
4. run the .pte (forward) -> an L2-normalised embedding;
5. classify: cosine to `labels/<set>.<lang>.json` embeddings, softmax of logit_scale x cosine,
   top-k by probability, ties to the lower class index.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
from PIL import Image, ImageOps

FORMAT, SCHEMA_VERSION = "compress-bundle", 2
GOLDEN_FORMAT, GOLDEN_VERSION = "compress-golden", 2
MANIFEST = "manifest.json"
PIXEL_TOLERANCE = 1.0 / 255.0
MIN_COSINE = 0.999


class BundleClientError(Exception):
    """A bundle this client refuses, or an input it cannot use."""


@contextlib.contextmanager
def runtime_output(verbose: bool = False) -> Iterator[None]:
    """Keeps the ExecuTorch runtime's own output off the console unless `verbose`.

    Importing the runtime logs a torch deprecation addressed to torchao, and its first XNNPACK
    program logs a cpuinfo probe, both on stderr (file descriptor 2 and `sys.stderr`). Inside the
    block both go to a temporary file, dropped when the block ends and written back to stderr when
    it raises, so a failed load still shows what the runtime said."""
    if verbose:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as raw:
        text = io.StringIO()
        failed = False
        os.dup2(raw.fileno(), 2)
        try:
            with contextlib.redirect_stderr(text):
                yield
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                raw.seek(0)
                sys.stderr.write(raw.read().decode("utf-8", errors="backslashreplace") + text.getvalue())
                sys.stderr.flush()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleClientError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BundleClientError(f"{path}: not a JSON object")
    return value


def check_inside(folder: Path, relative, where: str, source: Path) -> None:
    """Refuse a path that is not a string, is absolute, climbs with '..', holds a backslash or resolves outside."""
    if not isinstance(relative, str) or not relative:
        problem = "is not a path"
    elif relative.startswith("/") or (len(relative) > 1 and relative[1] == ":"):
        problem = "is absolute"
    elif "\\" in relative:
        problem = "holds a backslash"
    elif ".." in relative.split("/"):
        problem = "climbs out of the bundle with '..'"
    else:
        root, resolved = folder.resolve(), (folder / relative).resolve()
        if resolved == root or root in resolved.parents:
            return
        problem = "resolves outside the bundle folder"
    raise BundleClientError(f"{source}: {where} {relative!r} {problem}")


# The manifest fields this client reads and their JSON types; a manifest without them is refused before use.
FIELDS = {
    "files": (list, {"path": str, "sha256": str, "bytes": int}),
    "models": (list, {"target": str, "tower": str, "precision": str, "file": str}),
    "labels": (list, {"set": str, "lang": str, "file": str}),
    "image": (dict, {"size": int, "resize": str}),
    "text": (dict, {"tokenizer": str, "tokenizer_json": str, "max_length": int, "pad_id": int, "bos_id": int, "eos_id": int}),
}


def check_fields(manifest: dict, source: Path) -> None:
    """Refuse a manifest that lacks a field this client reads, or holds it with the wrong JSON type."""
    for key, (kind, fields) in FIELDS.items():
        value = manifest.get(key)
        if not isinstance(value, kind):
            raise BundleClientError(f"{source}: {key} is missing or not a JSON {'array' if kind is list else 'object'}")
        for index, item in enumerate(value if kind is list else [value]):
            where = f"{key}[{index}]" if kind is list else key
            if not isinstance(item, dict):
                raise BundleClientError(f"{source}: {where} is not a JSON object")
            for field, expected in fields.items():
                found = item.get(field)
                if not isinstance(found, expected) or isinstance(found, bool):
                    raise BundleClientError(f"{source}: {where}.{field} is missing or not a JSON {expected.__name__}")
    scale = manifest.get("logit_scale")
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale <= 0:
        raise BundleClientError(f"{source}: logit_scale is missing or not a positive number")
    if manifest["text"]["max_length"] < 2 or manifest["image"]["size"] < 1:
        raise BundleClientError(f"{source}: text.max_length must be at least 2 and image.size at least 1")


def check_listed(manifest: dict, source: Path) -> None:
    """Refuse a manifest that points at a file (or, for a Core ML package, a folder) it does not list."""
    listed = {entry["path"] for entry in manifest["files"]}
    for where, rel in manifest_paths(manifest):
        if where.startswith("files["):
            continue
        is_file = rel in listed
        is_folder = any(path.startswith(rel.rstrip("/") + "/") for path in listed)
        if not (is_file or (is_folder and where.startswith("models[") and rel.endswith(".mlpackage"))):
            raise BundleClientError(f"{source}: {where} {rel!r} is not a file in the file list")


def manifest_paths(manifest: dict) -> list[tuple[str, object]]:
    """(field, path) for every path the manifest holds."""
    found = [(f"files[{i}].path", e.get("path")) for i, e in enumerate(manifest.get("files", []))]
    found += [(f"text.{key}", manifest.get("text", {}).get(key)) for key in ("tokenizer", "tokenizer_json")]
    found += [(f"models[{i}].file", e.get("file")) for i, e in enumerate(manifest.get("models", []))]
    found += [(f"labels[{i}].file", e.get("file")) for i, e in enumerate(manifest.get("labels", []))]
    found += [(key, manifest[key]) for key in ("golden", "report") if key in manifest]
    return found


class BundleClient:
    """Embeds pictures and texts and classifies pictures with a bundle's ExecuTorch models."""

    def __init__(self, folder: str | Path, precision: str = "fp32", verify: bool = True, verbose: bool = False):
        self.folder = Path(folder)
        self.precision = precision
        manifest_path = self.folder / MANIFEST
        if not manifest_path.is_file():
            raise BundleClientError(f"{self.folder}: no {MANIFEST}")
        self.manifest = _read_json(manifest_path)
        if self.manifest.get("format") != FORMAT:
            raise BundleClientError(f"{manifest_path}: format is {self.manifest.get('format')!r}, not {FORMAT!r}")
        if self.manifest.get("schema_version") != SCHEMA_VERSION:
            raise BundleClientError(
                f"{manifest_path}: schema_version {self.manifest.get('schema_version')!r} is not one this "
                f"client reads ({SCHEMA_VERSION})"
            )
        check_fields(self.manifest, manifest_path)
        for where, rel in manifest_paths(self.manifest):
            check_inside(self.folder, rel, where, manifest_path)
        check_listed(self.manifest, manifest_path)
        if verify:
            self.verify()
        self.image_rule = self.manifest["image"]
        self.text_rule = self.manifest["text"]
        self.logit_scale = float(self.manifest["logit_scale"])
        self._sp = spm.SentencePieceProcessor(model_file=str(self.folder / self.text_rule["tokenizer"]))
        entries = {tower: self._model_entry(tower, precision) for tower in ("image", "text")}
        self._methods = {}
        with runtime_output(verbose):
            from executorch.runtime import Runtime

            runtime = Runtime.get()
            for tower, entry in entries.items():
                self._methods[tower] = runtime.load_program(self.folder / entry["file"]).load_method("forward")

    def _model_entry(self, tower: str, precision: str) -> dict:
        for entry in self.manifest["models"]:
            if entry["target"] == "executorch" and entry["tower"] == tower and entry["precision"] == precision:
                return entry
        raise BundleClientError(f"{self.folder}: no ExecuTorch {tower} model in {precision}")

    def verify(self) -> None:
        """Every listed file present with its size and sha256; nothing unlisted; no symbolic link."""
        listed = {entry["path"]: entry for entry in self.manifest["files"]}
        present = {p.relative_to(self.folder).as_posix(): p for p in self.folder.rglob("*") if p.is_file() or p.is_symlink()}
        links = sorted(rel for rel, p in present.items() if p.is_symlink())
        if links:
            raise BundleClientError(f"{self.folder / links[0]}: a symbolic link; a bundle holds plain files only")
        for rel, entry in sorted(listed.items()):
            path = self.folder / rel
            if rel not in present:
                raise BundleClientError(f"{path}: missing (listed in {MANIFEST})")
            if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
                raise BundleClientError(f"{path}: altered (size or sha256 differs from {MANIFEST})")
        extra = sorted(set(present) - set(listed) - {MANIFEST})
        if extra:
            raise BundleClientError(f"{self.folder / extra[0]}: not listed in {MANIFEST}")

    # 2. image
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """[1, 3, S, S] float32 RGB in [0, 1]."""
        size, rule = self.image_rule["size"], self.image_rule["resize"]
        image = image.convert("RGB")
        if rule == "squash":
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        else:  # shorter_side_center_crop
            width, height = image.size
            if width <= height:
                new_w, new_h = size, int(size * height / width)
            else:
                new_w, new_h = int(size * width / height), size
            if (new_w, new_h) != (width, height):
                image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
            left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
            image = image.crop((left, top, left + size, top + size))
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        return np.ascontiguousarray(pixels.transpose(2, 0, 1)[None])

    def pixel_inputs(self, paths) -> np.ndarray:
        """[N, 3, S, S] float32: the model input of each picture file, read as the apps read it."""
        return np.concatenate([self.preprocess(load_picture(path)) for path in paths])

    # 3. text
    def tokenize(self, text: str) -> np.ndarray:
        """[1, max_length] int64: bos, pieces, eos, pad."""
        length = self.text_rule["max_length"]
        pieces = self._sp.encode(text, out_type=int)[: length - 2]
        row = [self.text_rule["bos_id"], *pieces, self.text_rule["eos_id"]]
        ids = np.full((1, length), self.text_rule["pad_id"], dtype=np.int64)
        ids[0, : len(row)] = row
        return ids

    def token_ids(self, texts) -> np.ndarray:
        """[N, max_length] int64: the model input of each text."""
        return np.concatenate([self.tokenize(text) for text in texts])

    # 4. run
    def _run(self, tower: str, array: np.ndarray) -> np.ndarray:
        output = self._methods[tower].execute([torch.from_numpy(np.ascontiguousarray(array))])[0]
        return output.numpy()[0].astype(np.float32).copy()

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """[N, D]: the image model on given pixel tensors ([N, 3, S, S] float32, as another client prepared them)."""
        pixels = np.asarray(pixels, dtype=np.float32)
        return np.stack([self._run("image", pixels[i : i + 1]) for i in range(len(pixels))])

    def embed_ids(self, ids: np.ndarray) -> np.ndarray:
        """[N, D]: the text model on given id rows ([N, max_length] int64, as another client prepared them)."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.stack([self._run("text", ids[i : i + 1]) for i in range(len(ids))])

    def image_embedding(self, image: Image.Image) -> np.ndarray:
        return self._run("image", self.preprocess(image))

    def text_embedding(self, text: str) -> np.ndarray:
        return self._run("text", self.tokenize(text))

    # 5. classify
    def labels(self, label_set: str, lang: str) -> dict:
        for entry in self.manifest["labels"]:
            if entry["set"] == label_set and entry["lang"] == lang:
                return _read_json(self.folder / entry["file"])
        raise BundleClientError(f"{self.folder}: no label set {label_set!r} in {lang!r}")

    def top_k(self, embedding: np.ndarray, label_set: str, lang: str, top: int = 5) -> list[dict]:
        """The `top` classes of an image embedding: softmax of logit_scale x cosine, ties to the lower index."""
        labels = self.labels(label_set, lang)
        classes = np.asarray(labels["embeddings"], dtype=np.float32)
        cosine = classes @ np.asarray(embedding, dtype=np.float32)
        logits = self.logit_scale * cosine.astype(np.float64)
        probability = np.exp(logits - logits.max())
        probability /= probability.sum()
        order = np.argsort(-probability, kind="stable")[:top]
        return [
            {
                "rank": rank + 1,
                "class": labels["classnames"][i],
                "index": int(i),
                "probability": float(probability[i]),
                "cosine": float(cosine[i]),
            }
            for rank, i in enumerate(order)
        ]

    def classify(self, image: Image.Image, label_set: str, lang: str, top: int = 5) -> list[dict]:
        return self.top_k(self.image_embedding(image), label_set, lang, top)

    # golden.json
    def golden(self) -> dict:
        path = self.folder / self.manifest["golden"]
        golden = _read_json(path)
        if golden.get("format") != GOLDEN_FORMAT or golden.get("version") != GOLDEN_VERSION:
            raise BundleClientError(f"{path}: not a {GOLDEN_FORMAT} file of version {GOLDEN_VERSION}")
        for i, item in enumerate(golden.get("images", [])):
            for key in ("file", "pixels"):
                check_inside(self.folder, item.get(key), f"images[{i}].{key}", path)
        return golden

    def check_golden(self, min_cosine: float = MIN_COSINE) -> list[str]:
        """Compare this pipeline with golden.json; returns the problems found (empty when all agree).

        Token ids exactly; pixels (this client's preprocessing of the golden picture) within 1/255
        of `pixels`; embeddings of this precision by cosine; top-5 class indices per label set."""
        golden = self.golden()
        key = "embedding" if self.precision == "fp32" else f"embedding_{self.precision}"
        problems = []
        for item in golden["texts"]:
            ids = self.tokenize(item["text"])[0].tolist()
            if ids != item["ids"]:
                problems.append(f"token ids of {item['text']!r} differ: {ids} != {item['ids']}")
            if key in item:
                cosine = float(np.dot(self.embed_ids(np.asarray([item["ids"]]))[0], np.asarray(item[key], dtype=np.float32)))
                if cosine < min_cosine:
                    problems.append(f"text embedding of {item['text']!r}: cosine {cosine:.5f} to golden {key}")
        for item in golden["images"]:
            pixels = self.preprocess(load_picture(self.folder / item["file"]))
            expected = np.fromfile(self.folder / item["pixels"], dtype="<f4")
            if expected.size != pixels.size or list(pixels.shape) != item["input_shape"]:
                problems.append(
                    f"pixels of {item['file']}: shape {list(pixels.shape)}, golden {item['input_shape']} ({expected.size} values)"
                )
                continue
            worst = float(np.abs(pixels.reshape(-1) - expected).max())
            if worst > PIXEL_TOLERANCE + 1e-7:
                problems.append(f"pixels of {item['file']} differ from {item['pixels']} by up to {worst:.4f} (> 1/255)")
            embedding = self.embed_pixels(expected.reshape(pixels.shape))[0]
            if key in item:
                cosine = float(np.dot(embedding, np.asarray(item[key], dtype=np.float32)))
                if cosine < min_cosine:
                    problems.append(f"image embedding of {item['file']}: cosine {cosine:.5f} to golden {key}")
            ranked_by = embedding if self.precision == "fp32" else np.asarray(item["embedding"], dtype=np.float32)
            for name, expected_top in item.get("top5", {}).items():
                label_set, lang = name.rsplit(".", 1)
                ours = [row["index"] for row in self.top_k(ranked_by, label_set, lang, len(expected_top))]
                if ours != [row["index"] for row in expected_top]:
                    problems.append(f"top-5 of {item['file']} for {name}: {ours} != {[row['index'] for row in expected_top]}")
        return problems


def load_picture(path: str | Path) -> Image.Image:
    """A picture file as the apps read one: EXIF orientation applied, transparency composited on white."""
    image = ImageOps.exif_transpose(Image.open(path))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image.convert("RGB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify a picture with a compress bundle (reference client).")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--image")
    parser.add_argument("--labels")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    parser.add_argument(
        "--check-golden", action="store_true", help="check token ids, pixels, embeddings and top-5 against golden.json"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="show the ExecuTorch runtime's own log lines")
    args = parser.parse_args(argv)
    try:
        client = BundleClient(args.bundle, precision=args.precision, verbose=args.verbose)
        if args.check_golden:
            problems = client.check_golden()
            for problem in problems:
                print(problem, file=sys.stderr)
            print("golden: ok" if not problems else f"golden: {len(problems)} problem(s)")
            if problems:
                return 1
        if args.image:
            if not args.labels:
                parser.error("--image needs --labels")
            rows = client.classify(load_picture(args.image), args.labels, args.lang, args.top)
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=1))
            else:
                for row in rows:
                    print(f"{row['rank']:>2}  {row['probability']:7.2%}  {row['cosine']:+.4f}  {row['class']}")
    except BundleClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
