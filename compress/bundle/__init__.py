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

from compress.lazy import lazy_exports

# Imported on first use: the export and the encoder pull in torch and the ExecuTorch runtime, and the
# command line reads its defaults from `compress.bundle.settings` without them.
_EXPORTS = {
    "MANIFEST": "layout",
    "SCHEMA_VERSION": "layout",
    "Bundle": "loader",
    "BundleEncoder": "encoder",
    "BundleError": "loader",
    "ExportReport": "export",
    "ExportSettings": "settings",
    "LabelSet": "labels",
    "available_label_sets": "labels",
    "export_bundle": "export",
    "load_bundle": "loader",
    "manifest_schema": "loader",
    "resolve_label_set": "labels",
    "validate_manifest": "loader",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
