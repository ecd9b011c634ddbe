"""Lossless dataclass ⇄ (JSON tree, named numpy arrays) conversion, driven by type hints.

A reconstruction is frozen dataclasses of numpy arrays and plain values. Arrays go to one ``.npz``
(exact dtype and shape), everything else to readable JSON whose array leaves name their npz key; loading
walks the dataclass type hints back, so adding a field needs no serialisation code.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
import typing
from pathlib import Path, PurePath
from typing import Any

import numpy as np

_ARRAY_KEY = "__array__"


def to_tree(value: Any, arrays: dict[str, np.ndarray], path: str = "root") -> Any:
    """JSON-able tree of ``value``; arrays are moved into ``arrays`` under their path."""
    if isinstance(value, np.ndarray):
        arrays[path] = value
        return {_ARRAY_KEY: path}
    if dataclasses.is_dataclass(value):
        return {
            f.name: to_tree(getattr(value, f.name), arrays, f"{path}.{f.name}")
            for f in dataclasses.fields(value)
        }
    if isinstance(value, tuple | list):
        return [to_tree(item, arrays, f"{path}.{i}") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): to_tree(v, arrays, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot serialise {type(value).__name__} at {path}")


def from_tree(tree: Any, hint: Any, arrays: typing.Mapping[str, np.ndarray]) -> Any:
    """Inverse of :func:`to_tree` for a value of type ``hint``."""
    if isinstance(tree, dict) and _ARRAY_KEY in tree:
        return np.asarray(arrays[tree[_ARRAY_KEY]])
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return None if tree is None else from_tree(tree, options[0], arrays)
    if dataclasses.is_dataclass(hint):
        hints = _type_hints(hint)
        return hint(**{name: from_tree(tree[name], hints[name], arrays) for name in tree if name in hints})
    if origin is tuple:
        args = typing.get_args(hint)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else Any
        return tuple(from_tree(v, item, arrays) for v in tree)
    if origin is dict:
        value_hint = typing.get_args(hint)[1]
        return {k: from_tree(v, value_hint, arrays) for k, v in tree.items()}
    if hint is float and tree is not None:
        return float(tree)
    if hint is Path and tree is not None:
        return Path(tree)
    return tree


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Field types of a dataclass. Array fields (jaxtyping strings such as ``Float[np.ndarray, "5"]``,
    which ``typing.get_type_hints`` mis-parses) need none: their tree leaf says it is an array."""
    namespace = vars(sys.modules[cls.__module__])
    hints = {}
    for f in dataclasses.fields(cls):
        annotation = f.type
        if isinstance(annotation, str):
            annotation = np.ndarray if "np.ndarray" in annotation else eval(annotation, namespace)  # noqa: S307
        hints[f.name] = annotation
    return hints
