"""``schema``, ``list``, ``validate`` and the summary, each across its class of input."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from models.twin import TWIN
from sim import cli
from sim.cli import EXIT_CRASH, EXIT_USAGE, main, summary_text
from sim.results import FORMAT_VERSION, result_header
from tests.test_cli import SMALL


def invoke(args: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``hems-twin ARGS``."""
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, which are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


# -- schema -----------------------------------------------------------------------------------


def test_the_schema_is_strict_json(root: Path) -> None:
    code, stdout, _ = invoke(["schema"])
    assert code == 0
    assert strict_json(stdout) == json.loads(stdout)
    strict_json((root / "scenarios" / "scenario.schema.json").read_text(encoding="utf-8"))


def test_an_infinity_in_the_schema_fails_loudly_instead_of_printing_infinity(monkeypatch: pytest.MonkeyPatch) -> None:
    class Unbounded(BaseModel):
        limit: float = math.inf

    monkeypatch.setattr(TWIN, "scenario_type", Unbounded)
    with tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setattr(tempfile, "tempdir", tmp)
        code, stdout, stderr = invoke(["schema"])
    assert code == EXIT_CRASH
    assert stdout == "" and "Infinity" not in stderr
    assert "crash: ValueError: Out of range float values are not JSON compliant" in stderr


# -- the result header ----------------------------------------------------------------------------


def test_the_header_carries_a_format_version(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    header = result_header(cli.load(TWIN, path), 3, TWIN.name)
    assert set(header) == {"format_version", "scenario", "scenario_hash", "seed", "twin", "version"}
    assert header["format_version"] == FORMAT_VERSION == 1 and type(header["format_version"]) is int
    code, stdout, _ = invoke(["run", str(path), "--out", str(tmp_path / "o"), "--json"])
    assert code == 0 and json.loads(stdout)["format_version"] == 1


# -- validate: files that must never be read --------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="devices and FIFOs as POSIX has them")
@pytest.mark.timeout(30)
def test_validate_refuses_devices_and_fifos_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    started = time.monotonic()
    code, stdout, stderr = invoke(["validate", "/dev/zero", "/dev/urandom", str(fifo)])
    assert time.monotonic() - started < 5
    assert code == EXIT_USAGE and stdout == ""
    assert stderr.splitlines() == [
        f"{name}: is not a regular file (a device, FIFO or socket)" for name in ("/dev/zero", "/dev/urandom", fifo)
    ]


def test_validate_hints_at_numbers_yaml_reads_as_text(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("meters: 50", "meters: 1e3"))
    assert invoke(["validate", str(path)]) == (
        EXIT_USAGE,
        "",
        f'{path}:4: fleet.meters: expected an integer (got "1e3"; YAML reads 1e3 as text: write 1000)\n',
    )


# -- list -----------------------------------------------------------------------------------------


def test_list_works_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, _ = invoke(["list"])  # the twin's own scenarios
    assert code == 0 and re.search(r"^baseline\.yaml +Steady state", stdout, re.MULTILINE)
    monkeypatch.setattr(type(TWIN), "scenarios_dir", None)  # a twin without its own folder
    (tmp_path / "here.yaml").write_text(SMALL)
    assert invoke(["list"])[1].startswith("here.yaml  A tiny scenario")  # then the current folder
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "there.yaml").write_text(SMALL)
    assert invoke(["list"])[1].startswith("there.yaml  A tiny scenario")  # ./scenarios comes first


def test_list_help_says_where_it_looks() -> None:
    with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:
        main(["list", "--help"])
    assert "default: the twin's own scenarios, else ./scenarios, else ." in " ".join(out.getvalue().split())


NAMES = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz-_0123456789"), min_size=1, max_size=60)
DESCRIPTIONS = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.just("\n"), max_size=200)


@settings(max_examples=30, deadline=None)
@given(
    files=st.dictionaries(NAMES, DESCRIPTIONS | st.none(), min_size=1, max_size=4),
    columns=st.one_of(st.none(), st.integers(20, 200)),
)
def test_list_columns_line_up_and_fit_the_terminal(files: dict[str, str | None], columns: int | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        folder = Path(tmp)
        for name, description in files.items():
            if description is None:  # an invalid scenario is listed too
                (folder / f"{name}.yaml").write_text("name: [\n")
            else:
                data = {"name": "listed", "description": description, "duration": "1m"}
                (folder / f"{name}.yaml").write_text(yaml.safe_dump(data))
        if columns is not None:
            patch.setattr(cli, "_is_terminal", lambda stream: True)
            patch.setattr(cli.shutil, "get_terminal_size", lambda: os.terminal_size((columns, 24)))
        code, stdout, _ = invoke(["list", tmp])
    assert code == 0
    lines = stdout.splitlines()
    width = max(len(name) for name in files) + len(".yaml")
    assert len(lines) == len(files)
    for line, name in zip(lines, sorted(f"{n}.yaml" for n in files), strict=True):
        assert line.startswith(f"{name:<{width}}  ")  # every description starts in the same column
        text = line[width + 2 :]
        description = files[name.removesuffix(".yaml")]
        shown = text.removesuffix("...") if columns is not None else text  # cut to the terminal's width
        if description is None:
            assert shown.startswith("INVALID: ") or "INVALID: ".startswith(shown)
        elif columns is None:
            assert text == " ".join(description.split())  # one line, never cut when piped
        else:
            assert " ".join(description.split()).startswith(shown)
        if columns is not None:
            assert len(line) <= max(columns, width + 8)
            if len(line) > columns or line.endswith("..."):
                assert line.endswith("...")


# -- the summary: what "in flight" means -------------------------------------------------------------


def test_a_short_run_explains_its_readings_in_flight(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    code, stdout, _ = invoke(["run", str(path), "--seed", "3", "--out", str(tmp_path / "o")])
    assert code == 0
    result = json.loads((tmp_path / "o" / "result.json").read_text())
    sensor = result["flows"]["sensor"]
    in_flight = result["ledger"]["readings"]["states"]["in_flight"]["total"]
    assert in_flight == sensor["stream_backlog_at_end"] > 0.01 * result["ledger"]["readings"]["entered"]
    (note,) = [line for line in stdout.splitlines() if line.startswith("  readings: ")]
    assert f"{in_flight:,} of 600 " in note and "in flight at the end -- not lost, not settled yet: " in note
    assert f"{sensor['processed_awaiting_checkpoint']:,} processed but after the stream's last checkpoint" in note


COUNTS = st.integers(0, 10**7)


@settings(max_examples=300, deadline=None)
@given(
    entered=COUNTS,
    in_flight=COUNTS,
    awaiting=st.none() | COUNTS,
    unread=st.none() | COUNTS,
    resend=st.none() | COUNTS,
    kind=st.sampled_from(["readings", "commands", "widgets"]),
)
def test_in_flight_is_explained_when_large_with_the_result_own_figures(
    entered: int, in_flight: int, awaiting: int | None, unread: int | None, resend: int | None, kind: str
) -> None:
    sensor = {k: v for k, v in (("processed_awaiting_checkpoint", awaiting), ("unprocessed_in_stream", unread)) if v}
    result: dict[str, Any] = {
        "scenario": "s",
        "seed": 1,
        "version": "v",
        "flows": {"sensor": sensor} if sensor else {},
        "components": {"meters": {"waiting_to_resend_at_end": resend}, "iot-core": {"qos1_unacked_at_end": resend}},
        "ledger": {kind: {"entered": entered, "states": {"in_flight": {"total": in_flight, "by_reason": {}}}}},
        "invariants": [],
    }
    notes = [line for line in summary_text(result).splitlines() if "in flight at the end" in line]
    large = entered > 0 and in_flight >= max(1, 0.01 * entered)
    assert len(notes) == int(large)
    if not large:
        return
    (note,) = notes
    assert note.startswith(f"  {kind}: {in_flight:,} of {entered:,} (")
    if ": " in note.partition("not settled yet")[2]:
        listed = [int(n.replace(",", "")) for n in re.findall(r"(?:: |, )([\d,]+) ", note.partition("yet")[2])]
        assert sum(listed) == in_flight and all(n > 0 for n in listed)


@settings(max_examples=100, deadline=None)
@given(
    ledger=st.recursive(
        st.none() | st.integers() | st.text(max_size=3),
        lambda inner: st.dictionaries(st.text(max_size=8), inner, max_size=3),
    )
)
def test_the_summary_survives_any_ledger_shape(ledger: Any) -> None:
    summary_text({"scenario": "s", "seed": 1, "version": "v", "ledger": ledger if isinstance(ledger, dict) else {}})
