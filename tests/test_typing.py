"""The package is typed: it ships ``py.typed`` and ``mypy src/imperceptible`` (configured in pyproject.toml) is clean."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import imperceptible

from .conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]


def test_py_typed_marker_ships():
    package = Path(imperceptible.__file__).parent
    assert (package / "py.typed").is_file()
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the package's own dependency there
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["imperceptible"]
    assert "mypy" in config["tool"]


def test_mypy_clean():
    if importlib.util.find_spec("mypy") is None:
        skip_or_fail("mypy is not installed (pip install -e '.[test]')")
    # about 25 s from a cold cache on 2 busy cores, under a second warm (the cache is .mypy_cache, git-ignored)
    r = subprocess.run([sys.executable, "-m", "mypy", "src/imperceptible"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "Success: no issues found" in r.stdout
