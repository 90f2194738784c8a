"""The notebooks run top to bottom (code cells executed in order, headless matplotlib)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    matplotlib.use("Agg")
    monkeypatch.chdir(path.parent.parent)
    namespace: dict[str, object] = {"__name__": "__notebook__"}
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells
    for index, cell in enumerate(cells):
        exec(compile("".join(cell["source"]), f"{path.name}[{index}]", "exec"), namespace)
    import matplotlib.pyplot as plt

    assert plt.get_fignums(), "the notebook should draw its figure"
    plt.close("all")
