"""Imports go one way, core ← studio ← ui (STYLE.md rule 1), and heavy optional stacks stay lazy.

Each check runs in a fresh interpreter: inside the test run every module is already imported, so an
in-process check could never fail.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parents[1]

# Each argument PACKAGE:BLOCKED,... imports every module of PACKAGE with those top-level names made
# unimportable; packages go lowest layer first, so a layer's modules are imported under its own rule.
_CHECK = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    blocked = set()

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ImportError(f"{name} imported (not allowed here)")
            return None

    sys.meta_path.insert(0, Refuse())
    for rule in sys.argv[1:]:
        package, names = rule.split(":")
        blocked.clear()
        blocked.update(names.split(","))
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, package + "."):
            if module.name.endswith(".__main__"):
                continue
            try:
                importlib.import_module(module.name)
            except ImportError as error:
                sys.exit(f"{module.name}: {error}")
    """
)

RULES = (
    "core:gradio,viser,studio,ui,ray,pyrender,tensorboard,matplotlib,OpenEXR",
    "studio:gradio,viser,ui,ray,pyrender,tensorboard,matplotlib,OpenEXR",
)


def _check(rules, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _CHECK, *rules], cwd=cwd, capture_output=True, text=True)


def test_core_and_studio_import_nothing_above_them():
    result = _check(RULES, ROOT)
    assert result.returncode == 0, result.stderr


def test_the_check_fails_on_a_forbidden_import(tmp_path):
    (tmp_path / "leaky").mkdir()
    (tmp_path / "leaky" / "__init__.py").write_text("")
    (tmp_path / "leaky" / "view.py").write_text("import gradio\n")
    result = _check(["leaky:gradio,viser"], tmp_path)
    assert result.returncode != 0 and "leaky.view: gradio imported" in result.stderr
