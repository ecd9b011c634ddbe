"""core and studio never import UI libraries (STYLE.md rule 1)."""

import importlib
import pkgutil
import sys

import core
import studio


def test_core_and_studio_import_without_gradio_or_viser(monkeypatch):
    for blocked in ("gradio", "viser"):
        monkeypatch.setitem(sys.modules, blocked, None)  # any import of it now raises ImportError
    for package in (core, studio):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name == "studio.__main__":
                continue  # runs the CLI on import
            importlib.import_module(module.name)
