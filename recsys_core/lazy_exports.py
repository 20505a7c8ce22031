"""Package attributes imported on first use (PEP 562 ``__getattr__``).

Importing any module of a package runs the package's ``__init__`` first, so an ``__init__``
that re-exports its heavy modules makes every light one heavy too: ``recsys_core.ranking``'s
purchase model imports LightGBM and scikit-learn (about a CPU second), which the app's first
page (a lab of the instant models, issue 24) never uses. A package whose ``__init__`` assigns
``__getattr__ = lazy_exports(__name__, {...})`` (and imports the same names under
``typing.TYPE_CHECKING`` for the type checker) keeps its public names and imports each
module when one of its names is first read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, modules: Mapping[str, Sequence[str]]) -> Callable[[str], Any]:
    """The ``__getattr__`` of ``package``: ``modules`` maps a submodule (relative name) to
    the public names it defines. A name read once is stored in the package's namespace, so
    later reads do not come here."""
    source = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = source.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
