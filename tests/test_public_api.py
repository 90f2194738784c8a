"""The public surface is explicit: every package lists it in a sorted ``__all__``."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["sim", "models", "models.logic", "models.policies"]


def _isort_style(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then CamelCase classes, then everything else."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolvable(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported in (sorted(exported, key=str.casefold), sorted(exported), sorted(exported, key=_isort_style))
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol} is listed but missing"


def test_engine_never_imports_the_model() -> None:
    import pathlib

    root = pathlib.Path(importlib.import_module("sim").__file__).parent
    offenders = [
        p.name for p in root.glob("*.py") if "import models" in p.read_text() or "from models" in p.read_text()
    ]
    assert offenders == []


def test_logic_never_imports_simpy() -> None:
    import pathlib

    root = pathlib.Path(importlib.import_module("models.logic").__file__).parent
    imports = ("import simpy", "from simpy", "from sim.kernel", "from sim.actor", "from sim.driver")
    assert [p.name for p in root.glob("*.py") if any(i in p.read_text() for i in imports)] == []


@pytest.mark.parametrize("module", ["models.logic", "models.policies", "sim.ops"])
def test_logic_and_policies_load_no_simulation_stack(module: str) -> None:
    """The sans-IO logic and the policies could run in a real service: importing them loads
    neither the simulator (simpy, networkx) nor the scenario format (pydantic)."""
    import subprocess
    import sys

    code = f"import sys, {module}; print(sorted(m for m in ('simpy', 'networkx', 'pydantic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", ["sim", "models"])
def test_lazy_packages_resolve_every_name_and_only_those(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(module._HOME) == sorted(module.__all__)
    with pytest.raises(AttributeError, match="no attribute"):
        module.__getattr__("nothing_here")
