"""The settings a user chooses, read from ``ReconstructionConfig`` itself: value, default, choices, help.

The page's widgets and the command line's short flags name config fields by their path
(``association.gate``). A field's help is its docstring, read from the dataclass's source, and its
default the dataclass's, so that no setting is described or defaulted twice; ``PAGE_SETTINGS`` only
says which fields the page shows and how a slider spans them.
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import textwrap
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from core.config import ReconstructionConfig
from core.errors import InputError

ALL_FRAMES = "::"
"""The frame range START:STOP:STEP (``core.io.video.FrameRange``) of a whole clip."""


@functools.cache
def field_docstrings(cls: type) -> dict[str, str]:
    """The docstring under each field of dataclass ``cls`` (the string literal after it), on one line."""
    (definition,) = ast.parse(textwrap.dedent(inspect.getsource(cls))).body
    body = definition.body
    docs = {}
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


@functools.cache
def _owner(path: str) -> tuple[type, str, Any]:
    """The dataclass holding the field at ``path``, the field's name and its type."""
    cls: Any = ReconstructionConfig
    *parents, name = path.split(".")
    for part in [*parents, name]:
        if part not in {f.name for f in fields(cls)}:
            raise InputError(f"setting {path!r}: {cls.__name__} has no field {part!r}")
        owner, hint = cls, typing.get_type_hints(cls)[part]
        cls = hint
    return owner, name, hint


@dataclass(frozen=True)
class Setting:
    """One field of ``ReconstructionConfig`` as the page shows it."""

    path: str
    """Dotted path of the field, e.g. ``association.gate``."""
    minimum: float | None = None
    """Slider range (with ``maximum`` and ``step``); None: a number box."""
    maximum: float | None = None
    step: float | None = None
    shown_when: tuple[str, str] | None = None
    """(path, value): a backend's setting, shown only while that backend is chosen."""

    @property
    def label(self) -> str:
        """The field's name under its section's, e.g. ``Association: gate``."""
        *parents, name = self.path.split(".")
        section = parents[-1] if parents else "run"
        return f"{section.capitalize().replace('_', ' ')}: {name.replace('_', ' ')}"

    @property
    def owner_field(self) -> tuple[type, str]:
        """The dataclass holding the field, and the field's name."""
        owner, name, _ = _owner(self.path)
        return owner, name

    @property
    def help(self) -> str:
        """The field's docstring, as plain text."""
        owner, name, _ = _owner(self.path)
        return field_docstrings(owner).get(name, "").replace("``", "")

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The values of a ``Literal`` field, else None."""
        hint = _owner(self.path)[2]
        return typing.get_args(hint) if typing.get_origin(hint) is Literal else None

    @property
    def kind(
        self,
    ) -> Literal["choice", "flag", "integer", "number", "optional number", "numbers", "path", "text"]:
        hint = _owner(self.path)[2]
        if self.choices is not None:
            return "choice"
        if hint is str:
            return "text"
        if hint in (bool, int, float):
            return {bool: "flag", int: "integer", float: "number"}[hint]
        if hint is Path or Path in typing.get_args(hint):
            return "path"
        if set(typing.get_args(hint)) == {float, type(None)}:
            return "optional number"
        if typing.get_origin(hint) is tuple and typing.get_args(hint) == (float, ...):
            return "numbers"
        raise InputError(f"setting {self.path!r}: the page has no widget for {hint}")

    @property
    def default(self) -> Any:
        return self.get(ReconstructionConfig())

    def get(self, config: ReconstructionConfig) -> Any:
        value: Any = config
        for part in self.path.split("."):
            value = getattr(value, part)
        return value

    def parse(self, value: Any) -> Any:
        """A widget's value as the field's type (a blank path or optional number: None; numbers: a
        tuple from text such as ``1400, 1380``)."""
        kind = self.kind
        if kind in ("optional number", "numbers"):
            parts = value if isinstance(value, tuple | list) else [] if value is None else [value]
            text = " ".join(str(part) for part in parts)
            numbers = tuple(self._number(part) for part in text.replace(",", " ").split())
            if kind == "numbers":
                return numbers
            if len(numbers) > 1:
                raise InputError(f"{self.label}: {value!r} is not one number")
            return numbers[0] if numbers else None
        if kind == "choice":
            if value not in self.choices:
                raise InputError(f"{self.label}: {value!r} is not one of {', '.join(self.choices)}")
            return value
        if kind == "path":
            text = "" if value is None else str(value).strip()
            return Path(text) if text else None
        if kind == "text":
            return "" if value is None else str(value).strip()
        if kind == "flag":
            return bool(value)
        number = self._float(value)
        if kind == "integer":
            if not number.is_integer():
                raise InputError(f"{self.label}: {value!r} is not a whole number")
            return int(number)
        return number

    def _float(self, value: Any) -> float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"{self.label}: {value!r} is not a number") from None

    def _number(self, text: str) -> float:
        number = self._float(text)
        if not math.isfinite(number) or number <= 0:
            raise InputError(f"{self.label}: {text!r} is not a positive number")
        return number


PAGE_SETTINGS = (
    Setting("association.position_weight", 0, 2, 0.05),
    Setting("association.pose_weight", 0, 2, 0.05),
    Setting("association.ray_weight", 0, 2, 0.05),
    Setting("association.gate", 0.1, 3, 0.05),
    Setting("world_tracking.enabled"),
    Setting("world_tracking.max_error", 0.05, 0.5, 0.01),
    Setting("tracking.max_missed_frames", 1, 60, 1),
    Setting("scale.mode"),
    Setting("scale.fixed_factor", shown_when=("scale.mode", "fixed")),
    Setting("perception.detector.min_score", 0.3, 0.95, 0.05),
    Setting("cameras.source"),
    Setting("sync.offsets"),
    Setting("cameras.hints.fov_deg"),
    Setting("cameras.hints.focal_px"),
    Setting("cameras.hints.height_m"),
    Setting("body.model"),
    Setting("body.smplx.model_dir", shown_when=("body.model", "smplx")),
)
"""The settings under the page's "Settings"; every other field keeps its default."""

PAGE_NETWORKS = (
    Setting("networks.scene"),
    Setting("networks.pi3x_ckpt", shown_when=("networks.scene", "pi3x")),
    Setting("networks.humans"),
    Setting("networks.mhmr_ckpt", shown_when=("networks.humans", "multihmr")),
    Setting("networks.chromm_ckpt", shown_when=("networks.humans", "chromm")),
    Setting("networks.head_depth", shown_when=("networks.humans", "multihmr")),
)
"""The settings under the page's "Networks"."""


def _with(node: Any, parts: list[str], value: Any) -> Any:
    head, *rest = parts
    return replace(node, **{head: _with(getattr(node, head), rest, value) if rest else value})


def config_from_values(
    values: Mapping[str, Any], base: ReconstructionConfig | None = None
) -> ReconstructionConfig:
    """``base`` (default: the defaults) with each ``{path: widget value}`` parsed into its field."""
    config = base or ReconstructionConfig()
    for path, value in values.items():
        config = _with(config, path.split("."), Setting(path).parse(value))
    return config
