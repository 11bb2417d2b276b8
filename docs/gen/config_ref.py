"""The mooring.toml reference, rendered from the pydantic models in ``mooring.config``.

Every section, key, type and default comes from the models; a key's text is its
``description=``, else the note for it in ``config_notes.md`` (hand-written prose and
examples per section). A note naming a key the models do not have is reported, so the
notes cannot outlive the configuration they describe.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cells  # docs/gen/cells.py, beside this file on the hook's path
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

NOTES = Path(__file__).with_name("config_notes.md")


@dataclass
class Section:
    path: str  # "rollout.guardrails"
    model: type[BaseModel]
    kind: str = "table"  # table | array (a [[...]] list) | map (a [section.NAME] dict)


@dataclass
class Notes:
    prose: dict[str, list[str]] = field(default_factory=dict)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # full key → (default, text)
    unknown: list[str] = field(default_factory=list)


def _models_in(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model a field holds, and how: directly, in a list, or in a dict by name."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "table"
    if origin in (list, tuple) and args:
        model, _ = _models_in(args[0])
        return model, "array"
    if origin is dict and len(args) == 2:
        model, _ = _models_in(args[1])
        return model, "map"
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in args:
            model, kind = _models_in(arg)
            if model is not None:
                return model, kind
    return None, ""


def key_name(name: str, info: Any) -> str:
    return info.alias or name


def sections(model: type[BaseModel] | None = None, prefix: str = "") -> Iterator[Section]:
    """Every section of MooringConfig, depth first."""
    if model is None:
        from mooring.config import MooringConfig

        model = MooringConfig
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        sub, kind = _models_in(info.annotation)
        if sub is None:
            continue
        path = f"{prefix}{key_name(name, info)}"
        yield Section(path, sub, kind)
        yield from sections(sub, path + ".")
    extra = typing.get_type_hints(model).get("__pydantic_extra__")
    if extra is not None:
        sub, _ = _models_in(extra)
        if sub is not None:
            # Every other key is a name of the user's choosing (a column).
            yield Section(f"{prefix}COLUMN", sub, "table")
            yield from sections(sub, f"{prefix}COLUMN.")


def keys() -> list[str]:
    """Every key of MooringConfig as a dotted path (sections included)."""
    out = []
    for section in sections():
        out.append(section.path)
        for name, info in section.model.model_fields.items():
            if not info.exclude:
                out.append(f"{section.path}.{key_name(name, info)}")
    return sorted(set(out))


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    if text is None:
        text = str(annotation)
    text = re.sub(r"typing\.|mooring\.config\._\w+\.|pydantic\.\w+\.", "", text)
    text = re.sub(r"Annotated\[(\w+), [^\]]*\]", r"\1", text)
    text = text.replace("NoneType", "None")
    return text


def _default(info: Any) -> str:
    if info.default_factory is not None:
        try:
            value = info.default_factory()
        except TypeError:
            return ""
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(table)"
    if value is None:
        return "none"
    try:
        return f"`{json.dumps(value, default=str)}`"
    except TypeError:
        return f"`{value}`"


def read_notes(known: set[str]) -> Notes:
    """config_notes.md: prose per section and a note per key, resolved to full paths."""
    notes = Notes()
    current: list[str] = []
    fence = False
    for line in NOTES.read_text().splitlines():
        if line.startswith("```"):
            fence = not fence
        heading = re.match(r"^## (.*)", line) if not fence else None
        sub = re.match(r"^`\[\[?([\w.]+)\]\]?`", line) if not fence else None
        if heading:
            current = re.findall(r"\[\[?([\w.]+)\]\]?", heading.group(1))
            continue
        if sub and sub.group(1) in known:
            current = [sub.group(1)]
        row = re.match(r"^\| (`[^|]*`) \| (.*?) \| (.*?) \|$", line) if not fence else None
        if row and current:
            for key in re.findall(r"`([^`]+)`", row.group(1)):
                full = _resolve(key.strip("[]"), current[0], known)
                if full is None:
                    notes.unknown.append(f"[{current[0]}] {key}")
                else:
                    notes.keys[full] = (row.group(2), row.group(3))
            continue
        if line.startswith("|") and not fence:
            continue
        if current:
            notes.prose.setdefault(current[0], []).append(line)
    return notes


def _resolve(key: str, section: str, known: set[str]) -> str | None:
    key = key.replace(".NAME", "")
    parts = section.split(".")
    while parts:
        for full in (".".join([*parts, key]), ".".join([*parts, "COLUMN", key])):
            if full in known:
                return full
        parts.pop()
    return key if key in known else None


def render() -> tuple[str, list[str]]:
    """The page's Markdown, and the notes that name no key (empty when all is well)."""
    known = set(keys())
    notes = read_notes(known)
    out = [
        "Paths are relative to the file's folder. Unknown keys are errors (with a "
        '"did you mean" hint), so a typo never silently does nothing. This page is '
        "generated from the configuration's models when the site is built.\n"
    ]
    for section in sections():
        brackets = ("[[", "]]") if section.kind == "array" else ("[", "]")
        name = section.path + (".NAME" if section.kind == "map" else "")
        depth = "##" if "." not in section.path else "###"
        out.append(f"{depth} `{brackets[0]}{name}{brackets[1]}`\n")
        if section.model.__doc__:
            out.append(section.model.__doc__.strip().split("\n\n")[0].replace("\n", " ") + "\n")
        prose = "\n".join(notes.prose.get(section.path, [])).strip()
        if prose:
            out.append(prose + "\n")
        out.append("| key | type | default | meaning |\n|---|---|---|---|")
        for field_name, info in section.model.model_fields.items():
            if info.exclude:
                continue
            key = key_name(field_name, info)
            full = f"{section.path}.{key}"
            note_default, note = notes.keys.get(full, ("", ""))
            default = _default(info)
            if default == "none" and note_default and note_default not in ("none", "—"):
                default = note_default
            text = info.description or note
            kind = cells.code(_type(info.annotation))
            out.append(f"| `{key}` | {kind} | {cells.cell(default)} | {cells.cell(text)} |")
        out.append("")
    return "\n".join(out), notes.unknown
