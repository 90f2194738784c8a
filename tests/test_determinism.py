"""Same scenario, seed and version: byte-identical result.json, serially or in another process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from models.twin import TWIN
from sim.cli import run_scenario
from sim.results import canonical_json
from tests.conftest import scenario

SHORT = {"duration": 300.0}


def _result_text(name: str, seed: int) -> str:
    spec = scenario(name).model_copy(update=SHORT)
    return canonical_json(run_scenario(TWIN, spec, seed))


def test_same_seed_same_bytes_in_process() -> None:
    assert _result_text("message-loss-devices", 5) == _result_text("message-loss-devices", 5)


def test_different_seed_different_result() -> None:
    assert _result_text("baseline", 5) != _result_text("baseline", 6)


def test_same_bytes_in_a_separate_process(root: Path, tmp_path: Path) -> None:
    outputs = []
    for index in range(2):
        out = tmp_path / f"run{index}"
        env_hash = {"PYTHONHASHSEED": str(index + 1)}  # different hash salts must not matter
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sim",
                "run",
                str(root / "scenarios" / "crash-iot-core.yaml"),
                "--seed",
                "9",
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, **env_hash},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append((out / "result.json").read_bytes())
    assert outputs[0] == outputs[1]
    serial = run_scenario(TWIN, scenario("crash-iot-core"), 9)
    assert canonical_json(serial).encode() == outputs[0]
