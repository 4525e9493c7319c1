"""A folder of JSON records, one file per key, each written atomically (temp file + rename)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from compress.files import write_json_atomically

log = logging.getLogger(__name__)


def digest_of(value: Any, length: int = 24) -> str:
    """A short sha256 of `value` as canonical JSON."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


class JsonStore:
    """`store.get(key_fields)` / `store.put(key_fields, record)`; the file name is the digest of `key_fields`.

    Each record keeps its key fields, and a read whose stored fields differ from the asked ones (a
    digest collision or a hand-edited file) or that does not parse is reported as a miss with a
    warning, so the caller measures again and overwrites it.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path_for(self, key_fields: dict[str, Any]) -> Path:
        return self.folder / f"{digest_of(key_fields)}.json"

    def get(self, key_fields: dict[str, Any]) -> dict[str, Any] | None:
        path = self.path_for(key_fields)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cache record, measuring again (%s)", path, exc)
            return None
        canonical = json.loads(json.dumps(key_fields, sort_keys=True, default=str))
        if not isinstance(record, dict) or record.get("key") != canonical:
            log.warning("%s: cache record does not match its key, measuring again", path)
            return None
        return record

    def put(self, key_fields: dict[str, Any], record: dict[str, Any]) -> Path:
        payload = {"key": json.loads(json.dumps(key_fields, sort_keys=True, default=str)), **record}
        return write_json_atomically(self.path_for(key_fields), payload, default=str)
