"""Reference client for a compress bundle: exactly what the phone apps do, in plain Python.

It reads nothing but the bundle folder and uses nothing but numpy, Pillow, sentencepiece and the
ExecuTorch runtime (whose Python API takes torch tensors). It does not import compress.

    python examples/python/bundle_client.py --bundle runs/dc_clip/bundle --image cat.jpg --labels demo-shape --lang zh
    python examples/python/bundle_client.py --bundle runs/dc_clip/bundle --check-golden

Steps, as manifest.json describes them:
1. verify: every file's sha256 equals the manifest's (an app does this after download);
2. image: RGB, bilinear resize (shorter side to `image.size`, centre crop; or a squash), bytes / 255,
   NCHW float32 [1, 3, S, S]; the model does (x - mean) / std itself;
3. text: SentencePiece pieces of the raw string, [bos] + first max_length-2 pieces + [eos], pad
   with pad_id to max_length, int64 [1, L];
4. run the .pte (forward) -> an L2-normalised embedding;
5. classify: cosine to `labels/<set>.<lang>.json` embeddings, softmax of logit_scale x cosine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch
from executorch.runtime import Runtime
from PIL import Image, ImageOps


class BundleClientError(Exception):
    """A bundle this client refuses, or an input it cannot use."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class BundleClient:
    """Embeds pictures and texts and classifies pictures with a bundle's ExecuTorch models."""

    def __init__(self, folder: str | Path, precision: str = "fp32", verify: bool = True):
        self.folder = Path(folder)
        manifest_path = self.folder / "manifest.json"
        if not manifest_path.is_file():
            raise BundleClientError(f"{self.folder}: no manifest.json")
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if self.manifest.get("format") != "compress-bundle" or self.manifest.get("schema_version") != 1:
            raise BundleClientError(f"{manifest_path}: not a compress bundle of schema version 1")
        if verify:
            self.verify()
        self.image_rule = self.manifest["image"]
        self.text_rule = self.manifest["text"]
        self.logit_scale = float(self.manifest["logit_scale"])
        self._sp = spm.SentencePieceProcessor(model_file=str(self.folder / self.text_rule["tokenizer"]))
        runtime = Runtime.get()
        self._methods = {}
        for tower in ("image", "text"):
            entry = self._model_entry(tower, precision)
            self._methods[tower] = runtime.load_program(self.folder / entry["file"]).load_method("forward")

    def _model_entry(self, tower: str, precision: str) -> dict:
        for entry in self.manifest["models"]:
            if entry["target"] == "executorch" and entry["tower"] == tower and entry["precision"] == precision:
                return entry
        raise BundleClientError(f"{self.folder}: no ExecuTorch {tower} model in {precision}")

    def verify(self) -> None:
        """Every listed file present with its size and sha256; nothing unlisted."""
        listed = {entry["path"]: entry for entry in self.manifest["files"]}
        for rel, entry in listed.items():
            path = self.folder / rel
            if not path.is_file():
                raise BundleClientError(f"{path}: missing")
            if path.stat().st_size != entry["bytes"] or _sha256(path) != entry["sha256"]:
                raise BundleClientError(f"{path}: altered (sha256 differs from manifest.json)")
        present = {p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file()}
        extra = sorted(present - set(listed) - {"manifest.json"})
        if extra:
            raise BundleClientError(f"{self.folder / extra[0]}: not listed in manifest.json")

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

    # 3. text
    def tokenize(self, text: str) -> np.ndarray:
        """[1, max_length] int64: bos, pieces, eos, pad."""
        length = self.text_rule["max_length"]
        pieces = self._sp.encode(text, out_type=int)[: length - 2]
        row = [self.text_rule["bos_id"], *pieces, self.text_rule["eos_id"]]
        ids = np.full((1, length), self.text_rule["pad_id"], dtype=np.int64)
        ids[0, : len(row)] = row
        return ids

    # 4. run
    def _run(self, tower: str, array: np.ndarray) -> np.ndarray:
        output = self._methods[tower].execute([torch.from_numpy(array)])[0]
        return output.numpy()[0].astype(np.float32).copy()

    def image_embedding(self, image: Image.Image) -> np.ndarray:
        return self._run("image", self.preprocess(image))

    def text_embedding(self, text: str) -> np.ndarray:
        return self._run("text", self.tokenize(text))

    # 5. classify
    def labels(self, label_set: str, lang: str) -> dict:
        for entry in self.manifest["labels"]:
            if entry["set"] == label_set and entry["lang"] == lang:
                return json.loads((self.folder / entry["file"]).read_text(encoding="utf-8"))
        raise BundleClientError(f"{self.folder}: no label set {label_set!r} in {lang!r}")

    def classify(self, image: Image.Image, label_set: str, lang: str, top: int = 5) -> list[dict]:
        labels = self.labels(label_set, lang)
        classes = np.asarray(labels["embeddings"], dtype=np.float32)
        cosine = classes @ self.image_embedding(image)
        logits = self.logit_scale * cosine
        probability = np.exp(logits - logits.max())
        probability /= probability.sum()
        order = np.argsort(-probability, kind="stable")[:top]
        return [
            {"rank": rank + 1, "class": labels["classnames"][i], "index": int(i),
             "probability": float(probability[i]), "cosine": float(cosine[i])}
            for rank, i in enumerate(order)
        ]

    def check_golden(self, min_cosine: float = 0.999) -> list[str]:
        """Compare this pipeline with golden.json; returns the problems found (empty when all agree)."""
        golden = json.loads((self.folder / self.manifest["golden"]).read_text(encoding="utf-8"))
        problems = []
        for item in golden["texts"]:
            ids = self.tokenize(item["text"])[0].tolist()
            if ids != item["ids"]:
                problems.append(f"token ids of {item['text']!r} differ: {ids} != {item['ids']}")
            cosine = float(np.dot(self.text_embedding(item["text"]), np.asarray(item["embedding"], dtype=np.float32)))
            if cosine < min_cosine:
                problems.append(f"text embedding of {item['text']!r}: cosine {cosine:.5f} to golden")
        for item in golden["images"]:
            image = Image.open(self.folder / item["file"])
            cosine = float(np.dot(self.image_embedding(image), np.asarray(item["embedding"], dtype=np.float32)))
            if cosine < min_cosine:
                problems.append(f"image embedding of {item['file']}: cosine {cosine:.5f} to golden")
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
    parser.add_argument("--check-golden", action="store_true", help="compare tokenizer and embeddings with golden.json")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        client = BundleClient(args.bundle, precision=args.precision)
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
