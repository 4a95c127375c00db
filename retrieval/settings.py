"""All of qabot's settings, read in this one module and passed down.

Precedence, highest first: command-line flags, environment variables (`QABOT_<SECTION>_<KEY>`,
e.g. `QABOT_INDEX_DIR`, `QABOT_MODELS_READER`), the config file (`--config`, `QABOT_CONFIG`
or the project's `config/qabot.toml`), then the defaults below. Every setting is documented,
with its default, in `config/qabot.toml`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from retrieval.errors import ConfigError
from retrieval.files import FileRefusedError, display_path, read_text_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "qabot.toml"
_MAX_CONFIG_BYTES = 1 << 20


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qabot"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qabot"


def _list_from_text(value: Any) -> Any:
    """A list setting as users write it in the environment: a JSON list, or items separated by commas.

    A value that names an existing path is one path, even if it holds a comma.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError("starts with '[' but is not a JSON list") from None
    if text and os.path.exists(os.path.expanduser(text)):
        return [text]
    return [item.strip() for item in text.split(",") if item.strip()]


def _folder(value: Path) -> Path:
    """A folder setting must name a folder, or a path where one can be made (not a file, nor inside one)."""
    path = value.expanduser()
    existing = next((p for p in (path, *path.parents) if os.path.lexists(p)), None)
    if existing is not None and not existing.is_dir():
        where = "is" if existing == path else f"is inside {existing}, which is"
        raise ValueError(f"{path} {where} a file, not a folder")
    return path


# A folder: an existing folder, or a path where one can be made.
FolderPath = Annotated[Path, AfterValidator(_folder)]
# The environment may give a list as "a,b", as a JSON list or as a single path (not only JSON).
PathList = Annotated[list[Path], NoDecode, BeforeValidator(_list_from_text)]
IdList = Annotated[list[int], NoDecode, BeforeValidator(_list_from_text)]
TextList = Annotated[list[str], NoDecode, BeforeValidator(_list_from_text)]


class _Section(BaseModel):
    model_config = {"extra": "forbid", "validate_assignment": True}


class DataSettings(_Section):
    dir: FolderPath = Field(default_factory=_default_data_dir, description="Folder for feedback and other data.")


class IndexSettings(_Section):
    dir: FolderPath | None = Field(default=None, description="Index folder; empty means <data.dir>/index.")
    corpus: PathList = Field(default_factory=lambda: [PROJECT_ROOT / "seeds"])
    passage_words: int = Field(default=120, ge=20, le=2000)
    overlap_sentences: int = Field(default=1, ge=0, le=10)
    max_file_mb: float = Field(default=20.0, gt=0)
    max_passages_per_file: int = Field(default=5000, ge=1)
    batch_size: int = Field(default=64, ge=1, le=4096)
    max_age_days: int = Field(default=0, ge=0)


class ModelSettings(_Section):
    embedding: str = Field(default="sentence-transformers/all-MiniLM-L6-v2", min_length=1)
    reader: str = Field(default="qabot-reader", min_length=1)
    cache_dir: FolderPath | None = None
    embedding_backend: Literal["onnx", "torch"] = "onnx"
    reader_backend: Literal["onnx", "torch"] = "onnx"
    quantize: bool = True
    reader_quantize: bool = False
    onnx_dir: FolderPath = Field(default_factory=lambda: _default_cache_dir() / "onnx")
    threads: int = Field(default=0, ge=0, le=256)


class RetrievalSettings(_Section):
    top_k: int = Field(default=5, ge=1, le=100)
    candidates: int = Field(default=20, ge=1, le=1000)
    recency_margin: float = Field(default=0.02, ge=0.0, le=1.0)


class StoreSettings(_Section):
    """Where passages live: the embedded index folder (default) or a Milvus collection."""

    backend: Literal["embedded", "milvus"] = "embedded"
    # A Milvus Lite path ending in .db on this machine, or http(s)://host:19530 for a Milvus server or cluster;
    # empty means <data.dir>/milvus.db.
    uri: str = ""
    collection: str = Field(default="qabot", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
    # BM25's text analyzer inside Milvus: Milvus Lite has "standard", a Milvus server also "english".
    analyzer: Literal["standard", "english"] = "standard"
    # The token (or "user:password") comes from $MILVUS_TOKEN, else from this file; never logged.
    token_file: Path | None = None
    timeout: float = Field(default=10.0, gt=0, le=600)

    @field_validator("uri")
    @classmethod
    def _milvus_uri(cls, value: str) -> str:
        value = value.strip()
        if value and not (value.endswith(".db") or value.startswith(("http://", "https://", "tcp://", "unix:"))):
            raise ValueError("must be a Milvus Lite path ending in .db, or http(s)://host:port of a Milvus server")
        return value


class AnswerSettings(_Section):
    # None: the reader model's own calibrated values (its calibration.json), else Haystack's defaults.
    min_reader_score: float | None = Field(default=None, ge=0.0, le=1.0)
    reader_calibration_factor: float | None = Field(default=None, gt=0.0, le=100.0)
    # Use the reader's fitted no-answer model (its calibration.json), when it has one; else Haystack's.
    fitted_no_answer: bool = True
    # None: the reader model's own fitted value (its calibration.json), else no sentence fallback.
    fallback_sentence_score: float | None = Field(default=None, ge=0.0, le=1.0)
    min_sentence_score: float = Field(default=0.45, ge=0.0, le=1.0)
    reader_windows: int = Field(default=2, ge=1, le=20)
    reader_window_margin: float = Field(default=0.05, ge=0.0, le=1.0)
    sentence_passages: int = Field(default=2, ge=1, le=20)
    max_question_tokens: int = Field(default=64, ge=8, le=512)


class TelegramSettings(_Section):
    base_url: str = "https://api.telegram.org/bot"
    token_file: Path | None = None
    allowlist: IdList = Field(default_factory=list)
    questions_per_minute: int = Field(default=10, ge=1, le=10_000)
    max_question_chars: int = Field(default=1000, ge=1, le=100_000)
    request_timeout: float = Field(default=5.0, gt=0, le=300)
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    admins: IdList = Field(default_factory=list)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class FeedSettings(_Section):
    urls: TextList = Field(default_factory=list)
    refresh_minutes: float = Field(default=30.0, ge=0, le=10_080)
    max_entries: int = Field(default=50, ge=1, le=10_000)

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.startswith(("http://", "https://")):
                raise ValueError(f"{value!r} must start with http:// or https://")
        return values


class FetchSettings(_Section):
    allow_private_hosts: bool = False
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_page_mb: float = Field(default=5.0, gt=0, le=1024)
    max_redirects: int = Field(default=5, ge=0, le=20)


class Settings(BaseSettings):
    """The whole configuration; see config/qabot.toml for each key's meaning."""

    model_config = SettingsConfigDict(
        env_prefix="QABOT_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        validate_assignment=True,
    )

    data: DataSettings = Field(default_factory=DataSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    answer: AnswerSettings = Field(default_factory=AnswerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    feeds: FeedSettings = Field(default_factory=FeedSettings)
    fetch: FetchSettings = Field(default_factory=FetchSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    @property
    def index_dir(self) -> Path:
        return self.index.dir if self.index.dir is not None else self.data.dir / "index"

    @property
    def store_uri(self) -> str:
        return self.store.uri or str(self.data.dir / "milvus.db")


class _FileSource(PydanticBaseSettingsSource):
    """The config file's values, already parsed, with relative paths resolved against the file."""

    data: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


_PATH_KEYS = (
    ("index", "dir"),
    ("index", "corpus"),
    ("data", "dir"),
    ("models", "cache_dir"),
    ("models", "onnx_dir"),
    ("telegram", "token_file"),
    ("store", "token_file"),
)


def _resolve_relative(data: dict[str, Any], base: Path) -> None:
    """Paths written in a config file are relative to that file, not to the current folder.

    Values of the wrong type are left alone, for validation to name them.
    """

    def resolved(value: Any) -> Any:
        return str((base / Path(value).expanduser()).resolve()) if isinstance(value, str) and value else value

    for section, key in _PATH_KEYS:
        values = data.get(section)
        if isinstance(values, dict) and key in values:
            value = values[key]
            values[key] = [resolved(v) for v in value] if isinstance(value, list) else resolved(value)


def _origin(section: str, key: str, overrides: dict[str, Any], path: Path | None) -> str:
    """Where a setting's value came from, as the user would look for it."""
    if key in overrides.get(section, {}):
        return "on the command line"
    variable = f"QABOT_{section}_{key}".upper()
    if any(name.upper() == variable for name in os.environ):
        return f"in {variable}"
    return f"in {path}" if path else "by default"


def _describe(error: ValidationError, overrides: dict[str, Any], path: Path | None) -> str:
    first = error.errors()[0]
    section, key = ([str(part) for part in first["loc"]] + ["", ""])[:2]
    reason = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if isinstance(value, (str, int, float, bool, list)) and "input" in first:
        reason += f" (got {value!r})"
    where = ".".join(str(part) for part in first["loc"])
    return f"invalid setting {where} {_origin(section, key, overrides, path)}: {reason}"


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings from the config file, the environment and `overrides` (nested dicts by section).

    Raises ConfigError, naming the key and the reason, when a value is invalid.
    """
    import tomllib

    chosen = config_file or os.environ.get("QABOT_CONFIG") or None
    path = Path(chosen).expanduser() if chosen else (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None)
    file_data: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file not found: {display_path(path)}", exit_code=2)
        try:
            file_data = tomllib.loads(read_text_file(path, _MAX_CONFIG_BYTES))
        except (FileRefusedError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {display_path(path)}: {exc}", exit_code=2) from exc
        _resolve_relative(file_data, path.resolve().parent)
    overrides = {section: values for section, values in overrides.items() if values}
    _FileSource.data = file_data
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, overrides, path), exit_code=2) from exc
    except SettingsError as exc:  # a QABOT_<SECTION> variable that is not a JSON object
        raise ConfigError(
            f"cannot read the settings in the environment: {exc}; set one key at a time, "
            "e.g. QABOT_INDEX_DIR=/srv/qabot/index",
            exit_code=2,
        ) from exc
    finally:
        _FileSource.data = {}
