"""Bundles: one folder a phone app (or `examples/python`) loads to embed and classify.

    from compress.bundle import export_bundle, load_bundle, BundleEncoder
    report = export_bundle(student, "bundle", targets=("executorch", "coreml"), quantize="int8",
                           label_sets=("demo-shape",), calibration_samples=samples)
    encoder = BundleEncoder("bundle", precision="int8")   # encode_images / encode_texts via ExecuTorch

See `compress.bundle.writer` for the layout and `manifest.schema.json` for the manifest.
"""

from compress.bundle.encoder import BundleEncoder
from compress.bundle.labels import LabelSet, available_label_sets, resolve_label_set
from compress.bundle.loader import MANIFEST, SCHEMA_VERSION, Bundle, BundleError, load_bundle, manifest_schema, validate_manifest
from compress.bundle.writer import ExportReport, export_bundle

__all__ = [
    "MANIFEST",
    "SCHEMA_VERSION",
    "Bundle",
    "BundleEncoder",
    "BundleError",
    "ExportReport",
    "LabelSet",
    "available_label_sets",
    "export_bundle",
    "load_bundle",
    "manifest_schema",
    "resolve_label_set",
    "validate_manifest",
]
