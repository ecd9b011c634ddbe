"""The part of OpenCV's FileStorage YAML that calibration files use, parsed in pure Python.

``cv2.FileStorage`` reads these files too, but fuzzing showed OpenCV 5's parser corrupting the heap and
aborting the whole process on some malformed files; a calibration chosen by a user must never take the
studio down, so this small parser reads only what EasyMocap writes: top-level ``key: value`` entries whose
value is a scalar, an ``!!opencv-matrix`` block (``rows``, ``cols``, ``dt``, ``data``), an
``!!opencv-nd-matrix`` block (``sizes``, ``dt``, ``data``: OpenCV 5 writes 1-D arrays so) or a sequence of
scalars (``- item`` lines or ``[a, b]``). Entries are split first and interpreted only when asked for, so
an unrelated entry of another shape never fails a read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
from jaxtyping import Float

from core.io.calibration.errors import CalibrationError

__all__ = ["OpenCvYaml"]

_MATRIX_TAGS = ("!!opencv-matrix", "!!opencv-nd-matrix")
_ONE_CHANNEL_TYPES = ("u", "c", "w", "s", "i", "f", "d", "h")
"""OpenCV ``dt`` codes of one-channel matrices (uchar … double, half)."""


@dataclass(frozen=True)
class OpenCvYaml:
    """The top-level entries of one file: key → (line number, value text with its indented lines)."""

    path: Path
    entries: dict[str, tuple[int, str]]

    @staticmethod
    def parse(path: Path, text: str) -> OpenCvYaml:
        """Split ``text`` into top-level entries; fails only on text that cannot be YAML of this shape."""
        entries: dict[str, tuple[int, list[str]]] = {}
        key = None
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "%", "---", "...")):
                continue
            if line[0] in " \t-":  # indented text, or a "- item" at column 0, continues the entry above
                if key is None:
                    raise CalibrationError(f"{path}: line {number}: indented text before any 'key:'")
                entries[key][1].append(line)
                continue
            key, colon, rest = (part.strip() for part in line.partition(":"))
            if not colon or not key:
                raise CalibrationError(f"{path}: line {number}: expected 'key: value', got {stripped[:40]!r}")
            if key in entries:
                raise CalibrationError(f"{path}: line {number}: key {key!r} appears twice")
            entries[key] = (number, [rest])
        return OpenCvYaml(path, {k: (n, "\n".join(lines)) for k, (n, lines) in entries.items()})

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def matrix(self, key: str, *sizes: int) -> Float[np.ndarray, " N"]:
        """The row-major data of the matrix entry ``key``, holding one of ``sizes`` numbers: an
        ``!!opencv-matrix`` (``rows``, ``cols``) or an ``!!opencv-nd-matrix`` (``sizes``), which OpenCV 5
        writes for 1-D arrays."""
        tag, _, body = self._value(key).partition("\n")
        header, data_mark, data = body.partition("data:")
        if tag not in _MATRIX_TAGS or not data_mark:
            self._fail(key, "is not an !!opencv-matrix or !!opencv-nd-matrix with a 'data:' list")
        fields = {
            name.strip(): value.strip() for name, _, value in (f.partition(":") for f in header.splitlines())
        }
        if fields.get("dt") not in _ONE_CHANNEL_TYPES:
            self._fail(
                key, f"has element type dt={fields.get('dt')!r}; expected a one-channel type such as d"
            )
        values = self._numbers(key, data)
        try:
            shape = (
                [int(fields.get("rows", "")), int(fields.get("cols", ""))]
                if tag == "!!opencv-matrix"
                else [int(n) for n in self._numbers(key, fields.get("sizes", ""), "sizes")]
            )
        except ValueError:
            self._fail(key, "has a shape (rows, cols or sizes) that is not whole numbers")
        declared = int(np.prod(shape))
        if values.size != declared or values.size not in sizes:
            expected = " or ".join(map(str, sizes))
            self._fail(
                key,
                f"holds {values.size} numbers ({'×'.join(map(str, shape))} declared); expected {expected}",
            )
        return values

    def _numbers(self, key: str, text: str, field: str = "data") -> Float[np.ndarray, " N"]:
        """The numbers of a ``[ a, b, … ]`` list (over several lines where long)."""
        text = text.strip()
        if not (text.startswith("[") and text.endswith("]")):
            self._fail(key, f"has a '{field}:' that is not a '[ ... ]' list")
        try:
            return np.array([float(v) for v in text[1:-1].split(",")] if text[1:-1].strip() else [])
        except ValueError:
            self._fail(key, f"has a '{field}:' list holding something other than numbers")

    def number(self, key: str) -> float:
        """The scalar entry ``key``."""
        value = self._value(key)
        try:
            return float(value)
        except ValueError:
            self._fail(key, "is not a number")

    def strings(self, key: str) -> list[str]:
        """The sequence entry ``key`` as strings, from ``- item`` lines or a ``[a, b]`` list."""
        value = self._value(key)
        flow = value.strip()
        if flow.startswith("["):
            if not flow.endswith("]"):
                self._fail(key, "is a '[' list without its closing ']'")
            items = [item.strip() for item in flow[1:-1].split(",")]
            return [] if items == [""] else [_unquote(item) for item in items]
        head, _, body = value.partition("\n")
        items = [line.strip() for line in body.splitlines()]
        if head or not all(item == "-" or item.startswith("- ") for item in items):
            self._fail(key, "is not a list of '- item' lines")
        return [_unquote(item[1:].strip()) for item in items]

    def _value(self, key: str) -> str:
        if key not in self.entries:
            raise CalibrationError(f"{self.path}: missing entry '{key}'")
        return self.entries[key][1]

    def _fail(self, key: str, problem: str) -> NoReturn:
        raise CalibrationError(f"{self.path}: line {self.entries[key][0]}: '{key}' {problem}")


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text
