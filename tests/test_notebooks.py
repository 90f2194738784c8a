"""The notebooks run top to bottom (code cells executed in order, headless matplotlib), and
are stored clean: nbformat 4.5 with a stable, unique id on every cell and no outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # nbformat 4.5's rule for cell ids


def _notebook(path: Path) -> dict[str, Any]:
    notebook: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return notebook


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path) -> None:
    """As a newcomer would: a real Jupyter kernel (nbclient), every cell in order from the
    repository's root, and at least one figure drawn; a cell that raises fails the test."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent.parent)}},
    )
    client.execute()
    images = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if "image/png" in output.get("data", {})
    ]
    assert images, "the notebook should draw its figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_a_stable_unique_id(path: Path) -> None:
    notebook = _notebook(path)
    assert (notebook["nbformat"], notebook["nbformat_minor"]) >= (4, 5), "cell ids need nbformat 4.5"
    ids = [cell.get("id") for cell in notebook["cells"]]
    assert all(isinstance(i, str) and CELL_ID.match(i) for i in ids), f"missing or malformed cell ids: {ids}"
    assert len(set(ids)) == len(ids), f"duplicate cell ids: {sorted(i for i in set(ids) if ids.count(i) > 1)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_are_stored(path: Path) -> None:
    for cell in _notebook(path)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {cell.get('id')} stores outputs"
            assert cell["execution_count"] is None, f"cell {cell.get('id')} stores an execution count"
        assert "attachments" not in cell or not cell["attachments"], f"cell {cell.get('id')} stores attachments"
