"""`BundleEncoder`: a bundle's ExecuTorch models behind the encoder interface compress/eval uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from compress.bundle.loader import Bundle, BundleError, load_bundle
from compress.bundle.plugins import load_target
from compress.bundle.preprocess import BundleTokenizer, image_input
from compress.errors import CompressError

PRECISIONS = ("fp32", "int8")
RUNTIME = "executorch"  # the registered target whose files this encoder runs, as the Android app does


class BundleEncoder:
    """`encode_images` / `encode_texts` through the ExecuTorch runtime, as an app would run them.

    `precision` picks the .pte files ("fp32" or "int8"); images are prepared by the manifest's
    rule (`compress.bundle.preprocess`) and texts by its tokenizer. Outputs are L2-normalised
    float32 tensors, one row per input (the models run at batch 1).
    """

    def __init__(self, bundle: str | Path | Bundle, precision: str = "fp32", verify: bool = True):
        if precision not in PRECISIONS:
            raise CompressError(f"unknown bundle precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, verify=verify)
        manifest = self.bundle.manifest
        self.precision = precision
        self.name = f"bundle:{self.bundle.folder.name}:{precision}"
        self.embed_dim = int(manifest["embed_dim"])
        self.languages = tuple(manifest["languages"])
        self.logit_scale = float(manifest["logit_scale"])
        self._image = self._text = None
        if not self.bundle.models(RUNTIME):
            raise BundleError(f"{self.bundle.folder}: the bundle has no ExecuTorch models to run")
        target = load_target(RUNTIME)
        if self.bundle.models(RUNTIME, "image"):
            self._image = target.load(self.bundle.path(self.bundle.model(RUNTIME, "image", precision)["file"]))
        if self.bundle.models(RUNTIME, "text"):
            self._text = target.load(self.bundle.path(self.bundle.model(RUNTIME, "text", precision)["file"]))
            self.tokenizer = BundleTokenizer(self.bundle.path(manifest["text"]["tokenizer"]), manifest["text"])

    @property
    def has_image_tower(self) -> bool:
        return self._image is not None

    @property
    def has_text_tower(self) -> bool:
        return self._text is not None

    def image_input(self, image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(image_input(image, self.bundle.manifest["image"]))

    @torch.no_grad()
    def encode_images(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """`[N, D]` float32, L2-normalised."""
        if self._image is None:
            raise CompressError(f"{self.bundle.folder}: the bundle has no image model")
        rows = [self._image(self.image_input(image)) for image in images]
        return torch.cat(rows).float() if rows else torch.empty(0, self.embed_dim)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], lang: str) -> torch.Tensor:
        """`[N, D]` float32, L2-normalised; `lang` must be one the bundle serves."""
        if self._text is None:
            raise CompressError(f"{self.bundle.folder}: the bundle has no text model")
        if lang not in self.languages:
            raise CompressError(f"{self.bundle.folder}: the bundle serves {', '.join(self.languages)}; got {lang!r}")
        rows = [self._text(torch.from_numpy(self.tokenizer(text))) for text in texts]
        return torch.cat(rows).float() if rows else torch.empty(0, self.embed_dim)

    def classify(self, image: Image.Image, label_set: str, lang: str, top: int = 5) -> list[dict]:
        """The `top` classes of a picture against the bundle's precomputed label embeddings.

        Each row: rank, class, probability (softmax of logit_scale x cosine over all classes), cosine.
        """
        labels = self.bundle.labels(label_set, lang)
        classes = torch.tensor(np.asarray(labels["embeddings"], dtype=np.float32))
        cosine = (self.encode_images([image]) @ classes.T)[0]
        probability = torch.softmax(self.logit_scale * cosine, dim=0)
        order = torch.argsort(probability, descending=True, stable=True)[: max(1, top)]  # ties: lower index first
        return [
            {
                "rank": rank + 1,
                "class": labels["classnames"][i],
                "index": int(i),
                "probability": float(probability[i]),
                "cosine": float(cosine[i]),
            }
            for rank, i in enumerate(order.tolist())
        ]
