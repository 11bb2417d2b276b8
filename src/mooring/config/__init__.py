"""mooring.toml → typed, validated configuration objects.

Every section is a pydantic model that forbids unknown keys, so a typo is an
error instead of a silently ignored setting. Validation errors are turned into
one :class:`~mooring.errors.ConfigError` whose message names each offending key,
the value received and the fix.

Examples:
    >>> cfg = MooringConfig.from_mapping({"project": {"name": "income"},
    ...                                   "data": {"train": "train.csv", "label": "class"}})
    >>> cfg.data.label
    'class'
"""

from __future__ import annotations

import difflib
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from mooring.config._base import Section
from mooring.config._data import ContractConfig, DataConfig, ProjectConfig
from mooring.config._evaluation import EvaluationConfig
from mooring.config._model import FeaturesConfig, ModelConfig
from mooring.config._monitoring import MonitoringConfig, RolloutConfig
from mooring.config._observability import (
    ObservabilityConfig,
)
from mooring.config._pipeline import (
    ExportConfig,
    PipelineConfig,
)
from mooring.config._registry import RegistryConfig
from mooring.config._serving import (
    ServingConfig,
)
from mooring.config._training import TrainingConfig
from mooring.errors import ConfigError, NotFoundError

__all__ = ["MooringConfig", "ServingConfig", "load_config"]


class MooringConfig(Section):
    """The whole project file. ``root`` is the folder relative paths are resolved from."""

    project: ProjectConfig
    data: DataConfig
    contract: ContractConfig = Field(default_factory=ContractConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)

    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _baseline_gates_name_candidates(self) -> MooringConfig:
        names = [c.name for c in self.model.candidates]
        for gate in self.evaluation.gates:
            if gate.kind == "baseline" and gate.baseline not in names:
                raise ValueError(
                    f"[[evaluation.gates]] kind = 'baseline' names baseline = {gate.baseline!r}, "
                    "which is not a [[model.candidates]] name"
                    + (f"; candidates: {', '.join(names)}" if names else "; there are none")
                )
        return self

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, root: Path | None = None, source: str = "mooring.toml"
    ) -> MooringConfig:
        """Validate a parsed mapping; raise :class:`ConfigError` naming every bad key."""
        if "root" in mapping:
            raise ConfigError(f"{source}: 'root' is not a section; remove it")
        try:
            cfg = cls.model_validate(dict(mapping))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, cls, source)) from None
        cfg.root = (root or Path(".")).resolve()
        return cfg

    def path(self, value: str) -> Path:
        """Resolve a path from the file relative to the file's folder."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate

    def existing_path(self, key: str, value: str) -> Path:
        """``value`` of ``key`` (e.g. ``[data] train``) resolved; it must exist.

        Raises:
            NotFoundError: naming the key, the value, where it was looked for and the fix.
        """
        path = self.path(value)
        if not path.exists():
            where = "" if str(path) == value else f" (looked for {path})"
            raise NotFoundError(
                f"{key} = '{value}' does not exist{where}; fix the path in mooring.toml (a "
                "relative path is read from the config file's folder)"
            )
        return path

    @property
    def home(self) -> Path:
        """The project's home folder (state, schema, statistics, reports)."""
        return self.path(self.project.home)


def load_config(path: str | Path) -> MooringConfig:
    """Read and validate a mooring.toml.

    Examples:
        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = Path(tmp.name)
        >>> _ = (folder / "mooring.toml").write_text('''
        ... [project]
        ... name = "income"
        ... [data]
        ... train = "data/train.csv"
        ... ''')
        >>> cfg = load_config(folder / "mooring.toml")
        >>> cfg.project.name, cfg.home == (folder / ".mooring").resolve()
        ('income', True)
        >>> tmp.cleanup()
    """
    file = Path(path)
    if not file.is_file():
        where = "" if file.is_absolute() else f" in {Path.cwd()}"
        raise NotFoundError(
            f"config file '{file}' does not exist{where}; create one from your data with "
            "`mooring init DATA.csv`, or pass --config PATH"
        )
    try:
        mapping = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc}); fix the syntax at that line") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8 text; save the file as UTF-8") from None
    return MooringConfig.from_mapping(mapping, root=file.parent, source=str(file))


def _section_name(loc: tuple[int | str, ...]) -> str:
    parents = [str(p) for p in loc[:-1]]
    return "[" + ".".join(parents) + "]" if parents else "top level"


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """Walk field annotations to find the model that owns the last key of ``loc``."""
    current: Any = model
    free_key = False
    for part in loc[:-1]:
        if free_key:
            # The key of a dict of models (contract.columns.NAME) is a user's name.
            free_key = False
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                # Typed free-form keys (features.NAME) name their model in __pydantic_extra__;
                # a plain dict of models (contract.columns.NAME) does not.
                extra = typing.get_type_hints(current).get("__pydantic_extra__")
                args = getattr(extra, "__args__", ())
                if not (args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel)):
                    return None
                current = args[-1]
                continue
            current = field.annotation
            args = getattr(current, "__args__", ())
            if args and isinstance(args[-1], type) and issubclass(args[-1], BaseModel):
                free_key = typing.get_origin(current) is dict
                current = args[-1]
        elif isinstance(current, type):
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


#: Keys whose values an error never repeats: a token put where its hash belongs.
_SECRET_KEYS = frozenset({"admin_token", "admin_tokens", "feedback_token"})


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """One line per problem: where, what was received, what is expected, the fix."""
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        key = str(loc[-1]) if loc else "?"
        where = _section_name(loc)
        value = err.get("input")
        kind = err["type"]
        if kind == "extra_forbidden":
            owner = _model_at(model, loc)
            known = (
                sorted((f.alias or n) for n, f in owner.model_fields.items() if not f.exclude)
                if owner
                else []
            )
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
            lines.append(f"{where}: unknown key '{key}'; {hint} Remove or rename it.")
        elif kind == "missing":
            lines.append(f"{where}: required key '{key}' is missing; add {key} = ... to {where}.")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            got = (
                "a value not shown (it may hold a secret)"
                if key in _SECRET_KEYS
                else (f"{value!r} ({type(value).__name__})")
            )
            lines.append(f"{where} key '{key}': {msg}; got {got}. Fix the value in {source}.")
    if len(lines) == 1:  # one problem, one line
        return f"{source}: {lines[0]}"
    header = f"{source}: {len(lines)} configuration problem{'s' if len(lines) != 1 else ''}"
    return header + ":\n  - " + "\n  - ".join(lines)
