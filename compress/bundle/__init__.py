"""Bundles: one folder a phone app (or `examples/python`) loads to embed and classify.

    from compress.bundle import ExportSettings, export_bundle, load_bundle, BundleEncoder
    settings = ExportSettings(targets=("executorch", "coreml"), quantize="int8", label_sets=("demo-shape",))
    report = export_bundle(student, "bundle", settings, calibration_samples=train, parity_samples=held_out)
    encoder = BundleEncoder("bundle", precision="int8")   # encode_images / encode_texts via ExecuTorch

Modules: `export` (orchestration), `settings` (defaults), `plugins` (targets by name), `parity`,
`golden`, `tables`, `labels`, `manifest` (sections, embedding_space), `tokenizer_json`, `layout`
(file names), `loader` (verification), `encoder`. The format is docs/bundle-format.md;
`manifest.schema.json` is its machine-readable form.
"""

from compress.bundle.encoder import BundleEncoder
from compress.bundle.export import ExportReport, export_bundle
from compress.bundle.labels import LabelSet, available_label_sets, resolve_label_set
from compress.bundle.layout import MANIFEST, SCHEMA_VERSION
from compress.bundle.loader import Bundle, BundleError, load_bundle, manifest_schema, validate_manifest
from compress.bundle.settings import ExportSettings

__all__ = [
    "MANIFEST",
    "SCHEMA_VERSION",
    "Bundle",
    "BundleEncoder",
    "BundleError",
    "ExportReport",
    "ExportSettings",
    "LabelSet",
    "available_label_sets",
    "export_bundle",
    "load_bundle",
    "manifest_schema",
    "resolve_label_set",
    "validate_manifest",
]
