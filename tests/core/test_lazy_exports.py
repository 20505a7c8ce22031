"""Packages that export their names lazily (``recsys_core.lazy_exports``) still export all."""

from __future__ import annotations

import importlib

import pytest

from tests.conftest import run_python

LAZY_PACKAGES = ("recsys_core.ranking", "recsys_core.evaluation")


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018 - the attribute access is the test


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_a_light_module_of_the_package_does_not_import_lightgbm(package: str) -> None:
    """Importing the package (or one of its light modules) leaves LightGBM unloaded."""
    code = f"import sys, {package}; print('lightgbm' in sys.modules)"
    done = run_python(code, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
