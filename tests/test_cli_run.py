"""``hems-twin run`` when things go wrong: crashes, Ctrl-C, output paths, runs too big to fit.

Every class is tested across the class with hypothesis: any exception type and message the
twin may raise, any point a run may be interrupted at, any name a scenario may carry, any
estimate a twin may give. The twin's ``run`` (or ``estimate``) is monkeypatched on the real
twin object, so the command line is exercised exactly as installed.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.twin import TWIN
from sim import cli
from sim.cli import CRASH_FILE, EXIT_CRASH, EXIT_INTERRUPTED, EXIT_USAGE, default_out, main
from sim.errors import ModelDefinitionError, Problem, ScenarioError, SimError
from sim.progress import RunProgress
from sim.results import canonical_json, write_text_atomic
from sim.twin import Estimate
from tests.test_cli import SMALL

SEED = 5
REAL_RUN = TWIN.run  # before any test patches it


@functools.cache
def small_body() -> dict[str, Any]:
    """The real result body of the small scenario (computed once, treated as read-only)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "small.yaml"
        path.write_text(SMALL)
        return REAL_RUN(cli.load(TWIN, path), SEED)


@contextlib.contextmanager
def workspace(
    run: Callable[..., Any] | None = None, estimate: Callable[[Any], Estimate] | None = None
) -> Iterator[Path]:
    """A fresh folder holding small.yaml, the current folder meanwhile; the twin patched."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        folder = Path(tmp)
        (folder / "small.yaml").write_text(SMALL)
        patch.chdir(folder)
        patch.setattr(tempfile, "tempdir", str(folder))  # crash reports with no output folder go here
        if run is not None:
            patch.setattr(TWIN, "run", run)
        if estimate is not None:
            patch.setattr(TWIN, "estimate", estimate)
        yield folder


def invoke(args: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``hems-twin ARGS``."""
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def leftovers(folder: Path) -> list[str]:
    """Temporary files left in a folder by a write that did not finish."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] if folder.is_dir() else []


# -- crashes ------------------------------------------------------------------------------------

EXCEPTIONS = [
    ValueError,
    KeyError,
    ZeroDivisionError,
    RuntimeError,
    AssertionError,
    TypeError,
    IndexError,
    AttributeError,
    RecursionError,
    MemoryError,
    OSError,
    FileNotFoundError,
    PermissionError,
    SimError,
    ModelDefinitionError,
    ScenarioError,  # even "bad input" escaping a run is a bug: the input was checked before it
    type("ModelBug", (Exception,), {}),
]


def make(kind: type[Exception], message: str) -> Exception:
    if kind is ScenarioError:
        return ScenarioError([Problem("x.yaml", 1, "field", message)])
    return kind(message)


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(EXCEPTIONS),
    message=st.text(st.characters(blacklist_categories=()), max_size=400),  # surrogates and controls too
    reached=st.floats(0, 120),
    earlier=st.booleans(),
    as_json=st.booleans(),
)
def test_an_exception_escaping_the_run_is_reported_as_a_crash(
    kind: type[Exception], message: str, reached: float, earlier: bool, as_json: bool
) -> None:
    error = make(kind, message)

    def crashing(scenario: Any, seed: int, progress: Any = None) -> dict[str, Any]:
        progress(reached, 1000)
        raise error

    with workspace(run=crashing) as folder:
        out = folder / "out" / "small"
        if earlier:
            out.mkdir(parents=True)
            (out / "result.json").write_text('{"earlier": true}\n')
        code, stdout, stderr = invoke(["run", "small.yaml", "--seed", str(SEED), *(["--json"] if as_json else [])])
        assert code == EXIT_CRASH
        assert stdout == ""  # stdout stays pure: nothing, not half a JSON
        assert stderr.count("\n") == 1 and stderr.endswith("\n"), "one paragraph"
        assert "Traceback" not in stderr
        assert stderr.startswith(f"hems-twin: crash: {kind.__qualname__}")
        assert "while running small.yaml (scenario small, seed 5)." in stderr
        assert f"Reproduce it with `hems-twin run small.yaml --seed {SEED} --out out/small`." in stderr
        assert f"The full traceback is in out/small/{CRASH_FILE}; please report it with that file." in stderr
        report = (out / CRASH_FILE).read_text()
        assert "Traceback (most recent call last)" in report and kind.__qualname__ in report
        assert f"simulated:      {reached:.1f} s of 120 s" in report
        if earlier:
            assert "No result was written; out/small/result.json is from an earlier run, not this one." in stderr
            assert (out / "result.json").read_text() == '{"earlier": true}\n'
        else:
            assert not (out / "result.json").exists()
        assert leftovers(out) == []


def test_a_crash_in_the_estimate_is_a_crash_too() -> None:
    def broken(scenario: Any) -> Estimate:
        raise ZeroDivisionError("division by zero")

    with workspace(estimate=broken) as folder:
        code, _, stderr = invoke(["run", "small.yaml"])
        assert code == EXIT_CRASH
        assert "crash: ZeroDivisionError: division by zero while reading small.yaml" in stderr
        assert (folder / "out" / "small" / CRASH_FILE).is_file()
        code, _, stderr = invoke(["validate", "small.yaml"])
        assert code == EXIT_CRASH and "ZeroDivisionError" in stderr and "Traceback" not in stderr


def test_a_crash_in_the_command_itself_is_reported_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_summary(result: dict[str, Any]) -> str:
        raise KeyError("flows")

    monkeypatch.setattr(cli, "summary_text", broken_summary)
    with workspace(run=lambda scenario, seed, progress=None: small_body()) as folder:
        code, _, stderr = invoke(["run", "small.yaml"])
        assert code == EXIT_CRASH and stderr.count("\n") == 1
        assert "(out/small/result.json was written before the crash.)" in stderr
        assert json.loads((folder / "out" / "small" / "result.json").read_text())["scenario"] == "small"


def test_with_no_output_folder_the_traceback_goes_to_a_temporary_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(cli, "_schema", lambda twin: 1 / 0)
    code, stdout, stderr = invoke(["schema"])
    assert code == EXIT_CRASH and stdout == ""
    assert "Reproduce it with `hems-twin schema`." in stderr
    (report,) = tmp_path.glob("hems-twin-crash-*.txt")
    assert "ZeroDivisionError" in report.read_text() and str(report) in stderr


# -- Ctrl-C ---------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(reached=st.floats(0, 120), earlier=st.booleans(), as_json=st.booleans())
def test_ctrl_c_prints_one_line_and_writes_nothing(reached: float, earlier: bool, as_json: bool) -> None:
    def interrupted(scenario: Any, seed: int, progress: Any = None) -> dict[str, Any]:
        progress(reached, 10)
        raise KeyboardInterrupt

    with workspace(run=interrupted) as folder:
        out = folder / "out" / "small"
        if earlier:
            out.mkdir(parents=True)
            (out / "result.json").write_text("{}\n")
        code, stdout, stderr = invoke(["run", "small.yaml", *(["--json"] if as_json else [])])
        assert code == EXIT_INTERRUPTED
        assert stdout == ""
        line = f"hems-twin: interrupted at simulated {reached:.1f} s of 120 s; no result written"
        if earlier:
            line += " (out/small/result.json is from an earlier run, not this one)"
            assert (out / "result.json").read_text() == "{}\n"
        else:
            assert not (out / "result.json").exists()
        assert stderr == line + "\n"
        assert leftovers(out) == []


def test_ctrl_c_before_the_run_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted_load(twin: Any, path: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load", interrupted_load)
    with workspace():
        assert invoke(["run", "small.yaml"]) == (
            EXIT_INTERRUPTED,
            "",
            "hems-twin: interrupted; nothing written\n",
        )


def test_a_real_sigint_exits_130_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text(SMALL)
    code = (
        "import os, signal, sys\n"
        # A shell without job control starts background jobs (CI) with SIGINT ignored; Python
        # then keeps it ignored.  A terminal's Ctrl-C arrives with Python's own handler.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from models.twin import TWIN\n"
        "from sim.cli import main\n"
        "def run(scenario, seed, progress=None):\n"
        "    progress(42.0, 7)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    raise AssertionError('the signal should have interrupted the run')\n"
        "TWIN.run = run\n"
        "sys.exit(main(['run', 'small.yaml']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == EXIT_INTERRUPTED
    assert done.stderr == "hems-twin: interrupted at simulated 42.0 s of 120 s; no result written\n"
    assert not (tmp_path / "out" / "small" / "result.json").exists()


@settings(max_examples=60, deadline=None)
@given(
    old=st.one_of(st.none(), st.text(max_size=50)),
    new=st.text(max_size=5000),
    fail_at=st.sampled_from(["write", "fsync", "replace", None]),
    interrupt=st.booleans(),
)
def test_results_are_replaced_atomically(old: str | None, new: str, fail_at: str | None, interrupt: bool) -> None:
    """Whatever fails or is interrupted during a write, the file is the old one or the new one."""
    failure: BaseException = KeyboardInterrupt() if interrupt else OSError(28, "No space left on device")
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        path = Path(tmp) / "result.json"
        if old is not None:
            path.write_bytes(old.encode("utf-8"))
        if fail_at is not None and (new or fail_at != "write"):  # nothing to write: no os.write to fail

            def fail(*args: Any, **kwargs: Any) -> Any:
                raise failure

            patch.setattr(os, fail_at, fail)
            with pytest.raises(type(failure)):
                write_text_atomic(path, new)
            patch.undo()
            assert (path.read_bytes().decode("utf-8") if path.exists() else None) == old
        else:
            write_text_atomic(path, new)
            assert path.read_bytes() == new.encode("utf-8")
        assert sorted(p.name for p in Path(tmp).iterdir()) == (["result.json"] if path.exists() else [])


# -- where results go and what the output says about it ---------------------------------------------


def test_out_says_when_it_replaces_an_earlier_result() -> None:
    with workspace(run=lambda scenario, seed, progress=None: small_body()) as folder:
        code, stdout, _ = invoke(["run", "small.yaml", "--out", "o"])
        assert code == 0 and stdout.endswith("\nwrote o/result.json\n")
        code, stdout, _ = invoke(["run", "small.yaml", "--out", "o"])
        assert code == 0 and stdout.endswith("\nwrote o/result.json (replaced the earlier result)\n")
        assert leftovers(folder / "o") == []


def test_json_goes_to_stdout_and_stderr_says_what_was_written() -> None:
    with workspace(run=lambda scenario, seed, progress=None: small_body()) as folder:
        for replaced in ("", " (replaced the earlier result)"):
            code, stdout, stderr = invoke(["run", "small.yaml", "--json"])
            assert code == 0
            assert json.loads(stdout)["scenario"] == "small"
            assert stdout == (folder / "out" / "small" / "result.json").read_text()
            assert stderr == f"hems-twin: wrote out/small/result.json{replaced}; the same JSON is on stdout\n"


NAMES = st.text(max_size=20) | st.sampled_from(["..", ".", "", "a/../..", "/etc", "a/b", "..\\x", "C:x", "x\0y"])


@settings(max_examples=300, deadline=None)
@given(name=NAMES)
def test_the_default_folder_is_always_directly_inside_out(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp)
        folder = refused = None
        try:
            folder = default_out(name)
        except SimError as error:
            refused = str(error)
        if folder is None:
            assert refused is not None and "does not name a folder inside out/" in refused and "--out DIR" in refused
        else:
            assert folder.parent == Path("out") and folder.name == name
            assert folder.resolve().parent == (Path(tmp) / "out").resolve()


def test_a_link_inside_out_that_leads_elsewhere_is_refused() -> None:
    with workspace(run=lambda scenario, seed, progress=None: small_body()) as folder:
        (folder / "elsewhere").mkdir()
        (folder / "out").mkdir()
        (folder / "out" / "small").symlink_to(folder / "elsewhere")
        code, _, stderr = invoke(["run", "small.yaml"])
        assert code == EXIT_USAGE and "'small' does not name a folder inside out/" in stderr
        assert list((folder / "elsewhere").iterdir()) == []


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(["..", "../escape", "/tmp/x", "a/../../b", ".", ""]) | st.text(min_size=1, max_size=8))
def test_a_run_never_writes_outside_out_whatever_the_name(name: str) -> None:
    """Defence in depth: even a name the loader let through (it makes names slugs) is checked."""
    real_load = cli.load

    def load_named(twin: Any, path: Any) -> Any:
        return real_load(twin, path).model_copy(update={"name": name})

    with (
        workspace(run=lambda scenario, seed, progress=None: small_body()) as folder,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(cli, "load", load_named)
        code, _, stderr = invoke(["run", "small.yaml"])
        written = list(folder.rglob("result.json"))
        if code == 0:
            assert [p.parent.parent for p in written] == [folder / "out"]
        else:
            assert code == EXIT_USAGE and written == [] and "does not name a folder inside out/" in stderr


def test_a_result_json_that_is_a_folder_is_refused_before_running() -> None:
    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("must not run")

    with workspace(run=never) as folder:
        (folder / "o" / "result.json").mkdir(parents=True)
        code, _, stderr = invoke(["run", "small.yaml", "--out", "o"])
        assert code == EXIT_USAGE and "o/result.json exists and is not a file" in stderr


# -- runs too big for this machine ------------------------------------------------------------------

PHYSICAL = 8 * 2**30


@settings(max_examples=60, deadline=None)
@given(
    memory=st.floats(0, 4 * PHYSICAL),
    wall=st.floats(0, 48 * 3600.0),
    driver=st.sampled_from(["fleet.meters", "workload.mobile_users", "metrics_interval", "duration"]),
    force=st.booleans(),
)
def test_runs_that_cannot_fit_are_refused_unless_forced(memory: float, wall: float, driver: str, force: bool) -> None:
    estimate = Estimate(events=1e6, memory_bytes=memory, wall_s=wall, driver=driver)
    ran = []

    def run(scenario: Any, seed: int, progress: Any = None) -> dict[str, Any]:
        ran.append(seed)
        return small_body()

    with workspace(run=run, estimate=lambda scenario: estimate), pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "_physical_memory", lambda: PHYSICAL)
        code, _, stderr = invoke(["run", "small.yaml", *(["--force"] if force else [])])
        too_big = memory > 0.8 * PHYSICAL or wall > 12 * 3600
        if too_big and not force:
            assert code == EXIT_USAGE and ran == []
            line = {"fleet.meters": 4, "workload.mobile_users": 5, "duration": 3}.get(driver)
            where = f"small.yaml:{line}" if line else "small.yaml"
            assert stderr.startswith(f"{where}: {driver}: this run would need about ")
            assert stderr.count("\n") == 1 and "Traceback" not in stderr
            assert ("of memory (more than 80% of this machine's 8.0 GiB)" in stderr) == (memory > 0.8 * PHYSICAL)
            assert ("(more than 12 h)" in stderr) == (wall > 12 * 3600)
            assert stderr.endswith("or shorten duration (now 2m); --force runs it anyway\n")
            assert not (Path("out") / "small").exists()
        else:
            assert code == 0 and len(ran) == 1


def test_validate_prints_the_estimate() -> None:
    estimate = Estimate(events=1e6, memory_bytes=120 * 2**20, wall_s=5.2, driver="fleet.meters")
    with workspace(estimate=lambda scenario: estimate):
        assert invoke(["validate", "small.yaml"]) == (0, "ok  small.yaml  (small; about 5 s, 120 MiB)\n", "")
    huge = Estimate(events=1e12, memory_bytes=2**45, wall_s=3e6, driver="fleet.meters")
    with workspace(estimate=lambda scenario: huge):
        code, stdout, _ = invoke(["validate", "small.yaml"])
        assert code == 0
        assert stdout == (
            "ok  small.yaml  (small; about 34.7 days, 32.0 TiB; "
            "too big for this machine: run needs --force (fleet.meters drives the cost))\n"
        )


# -- progress ------------------------------------------------------------------------------------


def test_a_progress_callback_changes_no_byte_of_the_result(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL.replace("duration: 2m", "duration: 7m"))
    scenario = cli.load(TWIN, path)
    seen: list[tuple[float, int]] = []
    watched = cli.run_scenario(TWIN, scenario, 11, progress=lambda now, events: seen.append((now, events)))
    plain = cli.run_scenario(TWIN, scenario, 11)
    assert canonical_json(watched) == canonical_json(plain)
    assert seen[-1] == (420.0, plain["engine"]["events"])
    assert [now for now, _ in seen] == sorted(now for now, _ in seen)


def test_the_bar_shows_only_on_a_terminal_and_after_the_delay() -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped = io.StringIO()
    with RunProgress(100.0, stream=piped) as progress:
        progress(50.0, 1000)
    assert piped.getvalue() == "" and progress.simulated_s == 50.0 and not progress.showing
    quick = Terminal()
    with RunProgress(100.0, stream=quick) as progress:  # the default 2 s delay: a short run shows nothing
        assert progress.showing
        progress(50.0, 1000)
    assert quick.getvalue() == ""
    shown = Terminal()
    with RunProgress(100.0, stream=shown, delay_s=0.0, refresh_s=0.0) as progress:
        progress(25.0, 10)
        progress(100.0, 40)
    text = shown.getvalue()
    assert "simulated s" in text and "events/s" in text and "100/100" in text


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(-(2**70), -1) | st.integers(2**63, 2**70) | st.integers(0, 2**63 - 1))
def test_seeds_outside_the_scenario_range_are_refused(seed: int) -> None:
    with workspace(run=lambda scenario, seed, progress=None: small_body()) as folder:
        code, _, stderr = invoke(["run", "small.yaml", "--seed", str(seed)])
        if 0 <= seed < 2**63:
            assert code == 0
        else:
            assert (code, stderr) == (EXIT_USAGE, f"hems-twin: --seed must be between 0 and {2**63 - 1} (got {seed})\n")
            assert not (folder / "out").exists()
