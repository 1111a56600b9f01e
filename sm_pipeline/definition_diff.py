"""A step-aware diff of two pipeline definitions: what a deploy changes, step by step.

``UpdatePipeline`` replaces one JSON document with another; this says what that means: steps added,
removed and changed, and per changed step its image, instance type and count, code, other arguments
(as JSON paths), ``CacheConfig``, ``RetryPolicies``, ``DependsOn``, property files and place (the
Condition branch or ForEach body it sits in); parameters added, removed, retyped or with a new default;
the top-level settings (``Version``, ``PipelineExperimentConfig``, ``ParallelismConfiguration``, ...).

Where a step's image and instances live is its kind's row in :mod:`sm_pipeline.step_kinds`; where its code
is, :func:`sm_pipeline.cache_config.code_uris` (the cache key's reading). Code is compared by content: the
definitions this project builds point at content-addressed keys (``.../code/<sha256[:16]>/<script>``,
:mod:`sm_pipeline.abalone.code_staging`), and given ``read_code`` (an object root, the emulated service's
S3) the objects' bytes are hashed, so a script replaced under the same URI is a change too.

Pure: no I/O of its own (``read_code`` is the caller's); the CLI is ``python -m sm_pipeline diff``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sm_pipeline.cache_config import code_uris
from sm_pipeline.step_graph import NESTING_KEYS, StepEntry, flatten_steps, object_or_empty
from sm_pipeline.step_kinds import kind_of

ABSENT = None  # how an absent value shows in to_json()
ASPECTS = ("type", "place", "image", "instance", "code", "arguments", "CacheConfig", "RetryPolicies", "DependsOn",
           "PropertyFiles", "other")
# Step keys with an aspect of their own; any other key (DisplayName, Description, ...) is "other".
_STEP_KEYS = ("Name", "Type", "Arguments", "CacheConfig", "RetryPolicies", "DependsOn", "PropertyFiles")
# Lists whose items carry a name are matched by it, so an inserted input is one change, not a shifted list.
_ITEM_KEYS = ("Name", "InputName", "OutputName", "ChannelName", "PropertyFileName", "StepName")
_CONTENT_ADDRESSED = re.compile(r"/code/([0-9a-f]{16,64})/[^/]+$")
_SHORT = 72
_MORE = 3

ReadCode = Callable[[str], "bytes | None"]


@dataclass(frozen=True)
class Change:
    """One value that differs: its JSON path, the old and the new value (``None`` when absent)."""

    path: str
    old: Any
    new: Any

    def to_json(self) -> dict[str, Any]:
        """``{"path", "old", "new"}``."""
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class StepDiff:
    """A step that differs: ``status`` is ``added``, ``removed`` or ``changed``; ``changes`` per aspect."""

    name: str
    type: str
    status: str
    changes: dict[str, list[Change]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The step's entry in :meth:`DefinitionDiff.to_json`."""
        return {"name": self.name, "type": self.type, "status": self.status,
                "changes": {aspect: [c.to_json() for c in changes] for aspect, changes in self.changes.items()}}


@dataclass(frozen=True)
class DefinitionDiff:
    """What differs between two definitions (:func:`diff_definitions`)."""

    steps: list[StepDiff] = field(default_factory=list)
    parameters: list[dict[str, Any]] = field(default_factory=list)
    settings: list[Change] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True when nothing a deploy would change differs."""
        return not (self.steps or self.parameters or self.settings)

    def steps_with(self, status: str) -> list[StepDiff]:
        """The steps ``added``, ``removed`` or ``changed``."""
        return [s for s in self.steps if s.status == status]

    def headline(self) -> str:
        """One line: how many steps, parameters and settings differ."""
        if self.is_empty:
            return "definitions are the same"
        counts = ", ".join(f"{len(self.steps_with(s))} {s}" for s in ("added", "removed", "changed"))
        return (f"steps: {counts}; parameters: {len(self.parameters)} changed; "
                f"settings: {len(self.settings)} changed")

    def summary_lines(self) -> list[str]:
        """The diff for people: the headline, then one line per step, parameter and setting that differs."""
        lines = [self.headline()]
        for step in self.steps:
            if step.status == "added":
                lines.append(f"+ step {step.name} ({step.type})")
            elif step.status == "removed":
                lines.append(f"- step {step.name} ({step.type})")
            else:
                parts = [_aspect_text(aspect, step.changes[aspect]) for aspect in ASPECTS if aspect in step.changes]
                lines.append(f"~ step {step.name} ({step.type}): {'; '.join(parts)}")
        for param in self.parameters:
            lines.append(_parameter_text(param))
        for change in self.settings:
            lines.append(f"~ setting {change.path}: {short_value(change.old)} -> {short_value(change.new)}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The diff for tools: ``{"same", "summary", "steps": {"added", "removed", "changed"}, "parameters",
        "settings"}``."""
        return {
            "same": self.is_empty,
            "summary": self.headline(),
            "steps": {status: [s.to_json() for s in self.steps_with(status)] for status in ("added", "removed", "changed")},
            "parameters": list(self.parameters),
            "settings": [c.to_json() for c in self.settings],
        }


def diff_definitions(old: dict, new: dict, *, read_code: ReadCode | None = None) -> DefinitionDiff:
    """The step-aware diff of ``old`` → ``new`` (definition dicts).

    ``read_code(uri)`` returns a code object's bytes, or None when it cannot be read; without it (or when
    it returns None) code is identified by its content-addressed URI, else by the URI itself.
    """
    old_steps, new_steps = _steps_by_name(old), _steps_by_name(new)
    old_defaults, new_defaults = _defaults(old), _defaults(new)
    steps: list[StepDiff] = []
    for name, entry in new_steps.items():
        if name not in old_steps:
            steps.append(StepDiff(name, entry.type, "added"))
    for name, entry in old_steps.items():
        if name not in new_steps:
            steps.append(StepDiff(name, entry.type, "removed"))
    for name, entry in new_steps.items():
        if name in old_steps:
            changes = _step_changes(old_steps[name], entry, old_defaults, new_defaults, read_code)
            if changes:
                steps.append(StepDiff(name, entry.type, "changed", changes))
    settings = json_changes({k: v for k, v in old.items() if k not in ("Steps", "Parameters")},
                     {k: v for k, v in new.items() if k not in ("Steps", "Parameters")}, "")
    return DefinitionDiff(steps=steps, parameters=_parameter_changes(old, new), settings=settings)


# -- steps ----------------------------------------------------------------------------------------------------
def _steps_by_name(definition: dict) -> dict[str, StepEntry]:
    return {entry.name: entry for entry in flatten_steps(definition) if entry.name}


def _defaults(definition: dict) -> dict[str, Any]:
    params = definition.get("Parameters")
    return {p["Name"]: p.get("DefaultValue") for p in params if isinstance(p, dict) and isinstance(p.get("Name"), str)} \
        if isinstance(params, list) else {}


def _own(entry: StepEntry) -> dict:
    """The step without the steps nested in it (a Condition's branches, a ForEach's body: they are steps of their own)."""
    step = dict(entry.step)
    nested = NESTING_KEYS.get(entry.type)
    if nested and isinstance(step.get("Arguments"), dict):
        step["Arguments"] = {k: ([s.get("Name") for s in v if isinstance(s, dict)] if k in nested and isinstance(v, list)
                                 else v) for k, v in step["Arguments"].items()}
    return step


def _step_changes(old: StepEntry, new: StepEntry, old_defaults: dict, new_defaults: dict,
                  read_code: ReadCode | None) -> dict[str, list[Change]]:
    changes: dict[str, list[Change]] = {}

    def add(aspect: str, found: list[Change]) -> None:
        if found:
            changes[aspect] = found

    old_step, new_step = _own(old), _own(new)
    add("type", [Change("Type", old.type, new.type)] if old.type != new.type else [])
    old_place, new_place = _place(old), _place(new)
    add("place", [Change("place", old_place, new_place)] if old_place != new_place else [])
    kind = kind_of(new.type) if old.type == new.type else None
    old_args, new_args = object_or_empty(old_step.get("Arguments")), object_or_empty(new_step.get("Arguments"))
    if kind is not None:
        add("image", _compare("image", _images(kind.images, old_args, old_defaults),
                              _images(kind.images, new_args, new_defaults)))
        add("instance", _compare("instance", _instances(kind.resources, old_args, old_defaults),
                                 _instances(kind.resources, new_args, new_defaults)))
    old_code, new_code = _code(old.type, old_args, read_code), _code(new.type, new_args, read_code)
    add("code", json_changes({k: v[1] for k, v in old_code.items()}, {k: v[1] for k, v in new_code.items()}, ""))
    masked = {*(uri for uri, _ in old_code.values()), *(uri for uri, _ in new_code.values())}
    add("arguments", json_changes(_masked(old_args, kind, masked), _masked(new_args, kind, masked), ""))
    for key in ("CacheConfig", "RetryPolicies", "DependsOn", "PropertyFiles"):
        add(key, json_changes(old_step.get(key), new_step.get(key), key))
    add("other", json_changes({k: v for k, v in old_step.items() if k not in _STEP_KEYS},
                       {k: v for k, v in new_step.items() if k not in _STEP_KEYS}, ""))
    return changes


def _place(entry: StepEntry) -> str:
    return f"{entry.condition}.{entry.branch}" if entry.condition else "top level"


def _compare(what: str, old: Any, new: Any) -> list[Change]:
    return [Change(what, old, new)] if old != new else []


def _at(value: Any, path: str) -> list[Any]:
    """The values at a dotted path; ``key[]`` walks every item of a list."""
    found = [value]
    for part in path.split("."):
        many = part.endswith("[]")
        key = part[:-2] if many else part
        found = [item.get(key) for item in found if isinstance(item, dict)]
        if many:
            found = [x for item in found if isinstance(item, list) for x in item]
    return [item for item in found if item is not None]


def _shown(value: Any, defaults: dict) -> Any:
    """A value with a ``Get Parameters.X`` replaced by X's default: what runs by default (the parameter's own
    change is a line of its own)."""
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("Get"), str) \
            and value["Get"].startswith("Parameters."):
        name = value["Get"].split(".", 1)[1]
        return defaults[name] if name in defaults else value
    return value


def _images(paths: tuple[str, ...], arguments: dict, defaults: dict) -> Any:
    images = [_shown(v, defaults) for path in paths for v in _at(arguments, path)]
    return images[0] if len(images) == 1 else (images or None)


def _instances(path: str | None, arguments: dict, defaults: dict) -> Any:
    if not path:
        return None
    config = (_at(arguments, path) or [None])[0]
    if not isinstance(config, dict):
        return config
    groups = config.get("InstanceGroups") if isinstance(config.get("InstanceGroups"), list) else [config]
    shown = [f"{_shown(g.get('InstanceCount', 1), defaults)} x {_shown(g.get('InstanceType'), defaults)}"
             for g in groups if isinstance(g, dict)]
    return " + ".join(shown) or None


def code_identity(uri: str, read_code: ReadCode | None = None) -> str:
    """What identifies a code object: the sha256 (16 hex digits) of its bytes when ``read_code`` reads them,
    else the content hash in a content-addressed URI, else the URI."""
    data = read_code(uri) if read_code else None
    if data is not None:
        return hashlib.sha256(data).hexdigest()[:16]
    match = _CONTENT_ADDRESSED.search(uri)
    return match.group(1)[:16] if match else uri


def _code(step_type: str, arguments: dict, read_code: ReadCode | None) -> dict[str, tuple[str, str]]:
    """``{script name: (uri, identity)}`` of a step's code objects."""
    found = {}
    for uri in code_uris(step_type, arguments):
        name = uri.rstrip("/").rsplit("/", 1)[-1] or uri
        found[name if name not in found else uri] = (uri, code_identity(uri, read_code))
    return found


def _masked(arguments: dict, kind, code: set[str]) -> Any:
    """Arguments with what has an aspect of its own (image, instances, code URIs) taken out."""
    value = json.loads(json.dumps(arguments))
    if kind is not None:
        for path in (*kind.images, *([kind.resources] if kind.resources else [])):
            _drop(value, path)
    return _without_strings(value, code)


def _drop(value: Any, path: str) -> None:
    parts = path.split(".")
    holders = [value]
    for part in parts[:-1]:
        many = part.endswith("[]")
        key = part[:-2] if many else part
        holders = [h.get(key) for h in holders if isinstance(h, dict)]
        if many:
            holders = [x for h in holders if isinstance(h, list) for x in h]
    last = parts[-1].removesuffix("[]")
    for holder in holders:
        if isinstance(holder, dict):
            holder.pop(last, None)


def _without_strings(value: Any, strings: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without_strings(v, strings) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_strings(v, strings) for v in value]
    return "<code>" if isinstance(value, str) and value in strings else value


# -- parameters -----------------------------------------------------------------------------------------------
def _parameters(definition: dict) -> dict[str, dict]:
    params = definition.get("Parameters")
    return {p["Name"]: p for p in params if isinstance(p, dict) and isinstance(p.get("Name"), str)} \
        if isinstance(params, list) else {}


def _parameter_changes(old: dict, new: dict) -> list[dict[str, Any]]:
    """``{"name", "change": added|removed|type|default|other, "old", "new"}`` per parameter that differs."""
    before, after = _parameters(old), _parameters(new)
    found: list[dict[str, Any]] = []
    for name, param in after.items():
        if name not in before:
            found.append({"name": name, "change": "added", "old": ABSENT,
                          "new": {"Type": param.get("Type"), "DefaultValue": param.get("DefaultValue")}})
    for name, param in before.items():
        if name not in after:
            found.append({"name": name, "change": "removed",
                          "old": {"Type": param.get("Type"), "DefaultValue": param.get("DefaultValue")}, "new": ABSENT})
    for name, param in after.items():
        if name not in before:
            continue
        was = before[name]
        if was.get("Type") != param.get("Type"):
            found.append({"name": name, "change": "type", "old": was.get("Type"), "new": param.get("Type")})
        if was.get("DefaultValue") != param.get("DefaultValue"):
            found.append({"name": name, "change": "default", "old": was.get("DefaultValue"),
                          "new": param.get("DefaultValue")})
        rest = json_changes({k: v for k, v in was.items() if k not in ("Name", "Type", "DefaultValue")},
                     {k: v for k, v in param.items() if k not in ("Name", "Type", "DefaultValue")}, "")
        found += [{"name": name, "change": "other", "path": c.path, "old": c.old, "new": c.new} for c in rest]
    return found


def _parameter_text(param: dict) -> str:
    name, change = param["name"], param["change"]
    if change == "added":
        return f"+ parameter {name} ({param['new']['Type']}, default {short_value(param['new']['DefaultValue'])})"
    if change == "removed":
        return f"- parameter {name} ({param['old']['Type']}, default {short_value(param['old']['DefaultValue'])})"
    if change == "other":
        return f"~ parameter {name} {param['path']}: {short_value(param['old'])} -> {short_value(param['new'])}"
    return f"~ parameter {name} {change}: {short_value(param['old'])} -> {short_value(param['new'])}"


# -- generic JSON diff ----------------------------------------------------------------------------------------
def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if isinstance(key, tuple):  # a list item matched by its name
        return f"{path}[{key[0]}={key[1]}]"
    return f"{path}.{key}" if path else str(key)


def _item_key(items: list) -> str | None:
    """The name key every item of ``items`` carries, uniquely, if any."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _ITEM_KEYS:
        names = [i.get(key) for i in items]
        if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
            return key
    return None


def json_changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every JSON path where ``old`` and ``new`` differ (dict keys, list items by name or index)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += json_changes(old.get(key), new.get(key), _join(path, key))
        return found
    if isinstance(old, list) and isinstance(new, list):
        key = _item_key(old) if old and _item_key(old) == _item_key(new) else None
        if key:
            before, after = {i[key]: i for i in old}, {i[key]: i for i in new}
            found = []
            for name in [*before, *(n for n in after if n not in before)]:
                found += json_changes(before.get(name), after.get(name), _join(path, (key, name)))
            return found
        if len(old) == len(new):
            found = []
            for index, (a, b) in enumerate(zip(old, new, strict=True)):
                found += json_changes(a, b, _join(path, index))
            return found
    return [Change(path or "(value)", old, new)]


# -- text -----------------------------------------------------------------------------------------------------
def short_value(value: Any) -> str:
    """A value in a summary line: images by repository and tag, anything long cut."""
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str) and "/" in value and not value.startswith("s3://") and ".dkr.ecr." in value:
        text = value.rsplit("/", 1)[-1]  # an image: its repository and tag say it
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _aspect_text(aspect: str, changes: list[Change]) -> str:
    if aspect in ("image", "instance", "type", "place"):
        (change,) = changes
        return f"{aspect} {short_value(change.old)} -> {short_value(change.new)}"
    if aspect == "code":
        return "code " + ", ".join(f"{c.path} {short_value(c.old)} -> {short_value(c.new)}" for c in changes)
    shown = ", ".join(f"{c.path} {short_value(c.old)} -> {short_value(c.new)}" for c in changes[:_MORE])
    more = f" (+{len(changes) - _MORE} more)" if len(changes) > _MORE else ""
    label = "arguments" if aspect == "arguments" else ("" if aspect != "other" else "step")
    return f"{label + ' ' if label else ''}{shown}{more}"
