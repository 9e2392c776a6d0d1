"""Cold-start cost of each function: the whole-process wall time of a fresh ``python -c``
that loads ``functions/<name>/app.py`` (``importlib.util.spec_from_file_location``, with the
local backend's environment), against ``python -c "import boto3"``. Median of N runs each,
after one unmeasured run of each (bytecode cache, page cache); the runs are interleaved so
that drift hits every command alike. Target: each function <= 1.5x boto3. The bytecode cache
lives in the temp dir (PYTHONPYCACHEPREFIX); a second pass without any bytecode is printed
for information.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    PYTHON,
    ROOT,
    TOKEN,
    Figure,
    Report,
    base_env,
    log,
    median,
    run_alone,
    workspace,
)

NAME = "import_time"
RATIO_TARGET = 1.5
BASELINE = "boto3"
INTERPRETER = "interpreter"
LOAD = """\
import importlib.util, sys
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("app", path)
module = importlib.util.module_from_spec(spec)
sys.modules["app"] = module
spec.loader.exec_module(module)
"""


def functions() -> list[Path]:
    return sorted(ROOT.glob("functions/*/app.py"))


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=120)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[-1]} failed:\n{done.stderr.decode(errors='replace')[-2000:]}")
    return seconds


def measure(
    commands: dict[str, list[str]], env: dict[str, str], runs: int, *, warm_up: bool = True
) -> dict[str, float]:
    """Median wall time (ms) of each command, after one unmeasured run of each."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values() if warm_up else ():
        timed(argv, env)  # unmeasured: writes the bytecode cache, warms the page cache
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(timed(argv, env))
    return {name: median(values) * 1000 for name, values in times.items()}


def run(quick: bool = False, full: bool = False) -> Report:
    report = Report(NAME)
    runs = 3 if quick else 5
    commands = {
        INTERPRETER: [PYTHON, "-c", "pass"],
        BASELINE: [PYTHON, "-c", "import boto3"],
    }
    for app in functions():
        commands[app.parent.name] = [PYTHON, "-c", LOAD, str(app)]
    with workspace(NAME) as (tmp, _procs):
        env = base_env(
            AUDIO_FILES_DIR=str(tmp / "audio"), DATA_DIR=str(tmp / "state"), API_TOKEN=TOKEN
        )
        # Cached bytecode, as in a deployed layer (pip writes .pyc files): kept in the temp
        # dir through PYTHONPYCACHEPREFIX, so that nothing is written into the repo or venv.
        cached = {**env, "PYTHONPYCACHEPREFIX": str(tmp / "pycache")}
        cached.pop("PYTHONDONTWRITEBYTECODE", None)
        medians = measure(commands, cached, runs)
        log(f"with bytecode cache: {runs} runs of {len(commands)} commands done")
        # No bytecode at all (every module compiled at import, stdlib included): the
        # worst case, which is what a PYTHONDONTWRITEBYTECODE checkout without __pycache__
        # pays on every start. Information only.
        (tmp / "no-pycache").mkdir()
        uncached = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
        uncached["PYTHONPYCACHEPREFIX"] = str(tmp / "no-pycache")
        cold = measure(commands, uncached, 1 if quick else 2, warm_up=False)
        log("without bytecode cache: done")

    base = medians[BASELINE]
    report.raw.update(runs=runs, median_ms=medians, median_ms_without_bytecode=cold)
    report.add(Figure("import: python -c 'pass' (for scale)", f"{medians[INTERPRETER]:.0f} ms"))
    report.add(Figure("import: python -c 'import boto3'", f"{base:.0f} ms"))
    functions_only = [name for name in commands if name not in (BASELINE, INTERPRETER)]
    for name in functions_only:
        ratio = medians[name] / base
        report.add(
            Figure.check(
                f"import: {name}",
                ratio,
                f"{medians[name]:.0f} ms = {{:.2f}}x",
                f"<= {RATIO_TARGET}x",
                ratio <= RATIO_TARGET,
            )
        )
    ratios = [cold[name] / cold[BASELINE] for name in functions_only]
    report.add(
        Figure(
            "import without bytecode: functions/boto3",
            f"{min(ratios):.2f}x-{max(ratios):.2f}x",
            note=f"boto3 {cold[BASELINE]:.0f} ms, interpreter {cold[INTERPRETER]:.0f} ms, when "
            "no .pyc exists (PYTHONDONTWRITEBYTECODE, no __pycache__): information only",
        )
    )
    return report


if __name__ == "__main__":
    sys.exit(run_alone(NAME, run, __doc__ or ""))
