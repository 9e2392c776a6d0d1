"""How a fuzz target is run and judged: Hypothesis generates the inputs, the target's check
runs the parser on each, and every exception that is not one the parser documents is kept
(the shortest input of each kind); then the same check is timed on built worst-case inputs
of growing size, to tell linear time from worse.

A check never raises for an input it was meant to refuse: it catches the errors its parser
documents itself (``NotMp3Error``, a 400, a 416...). Anything else it lets out, or a
``Finding`` it raises for a broken invariant (a byte range past the end of the file, a
negative duration), is a finding.

Linear time is judged simply: time per byte at each size over time per byte at the
smallest, at most 3x. Fixed costs per call weigh most at 1 KB, so the rule catches quadratic
work, not every constant-factor blow-up between sizes: the per-size times are printed for
a shape that fails and kept in bench/out/fuzz.json for every shape.
"""

from __future__ import annotations

import heapq
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.strategies import SearchStrategy

#: The sizes (bytes, or characters for text) each worst-case shape is timed at.
SIZES = (1_000, 10_000, 100_000, 1_000_000)
#: Time per byte may grow at most this much from the smallest size to any larger one.
MAX_GROWTH = 3.0
#: Each size is timed at least ``MIN_REPEATS`` times and for at least this long, at most
#: ``MAX_REPEATS`` times, and the best time counts. Times are this process's CPU time: on a
#: shared machine, wall time would also count the waits for a core, and those fall unevenly
#: (twenty runs of a 1 KB input find a quiet moment; three of a 1 MB one may not).
MIN_TIMING_SECONDS = 0.2
MIN_REPEATS = 3
MAX_REPEATS = 20
#: How much of an input a report shows.
SHOWN = 160
#: How many of the slowest inputs are timed again at the end of a run.
SLOWEST_KEPT = 5


class Finding(Exception):
    """A broken invariant: the parser answered, but wrongly."""


@dataclass(frozen=True)
class Target:
    """One parser (or a family of them) under fuzz.

    ``check(case)`` runs the parser(s) on one input, catching what they document raising;
    ``size(case)`` is the input's size in bytes (or characters); ``shapes`` build, for a
    size, the inputs expected to be slowest per byte (a name each, to say which one grew).
    """

    name: str
    about: str
    strategy: Callable[[], SearchStrategy[Any]]
    check: Callable[[Any], None]
    size: Callable[[Any], int]
    shapes: Mapping[str, Callable[[int], Any]]
    #: Run once before the inputs (seed files, quieter loggers); its result is not used.
    prepare: Callable[[], object] | None = None


@dataclass
class Failure:
    """One kind of failure (exception type and where it was raised), its shortest input."""

    kind: str
    message: str
    where: str
    case: Any
    size: int
    count: int = 1


@dataclass
class Timing:
    shape: str
    seconds: dict[int, float]  # size -> best time of one call

    @property
    def growth(self) -> float:
        """The largest time per byte at any size over the time per byte at the smallest."""
        per_byte = {size: t / size for size, t in self.seconds.items()}
        smallest = per_byte[min(per_byte)]
        return max(per_byte.values()) / smallest if smallest > 0 else float("inf")


@dataclass
class Result:
    target: str
    tried: int = 0
    seconds: float = 0.0  # the whole run, generation included
    checking: float = 0.0  # of which in the check
    failures: dict[str, Failure] = field(default_factory=dict)
    slowest: tuple[float, int, str] = (0.0, 0, "")  # seconds, size, the input's repr
    #: The inputs slowest on first sight: (seconds, order seen, input), timed again at the end.
    candidates: list[tuple[float, int, Any]] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)

    @property
    def growth(self) -> float:
        return max((t.growth for t in self.timings), default=0.0)

    @property
    def worst_shape(self) -> str:
        return max(self.timings, key=lambda t: t.growth).shape if self.timings else "-"

    @property
    def superlinear(self) -> list[Timing]:
        return [t for t in self.timings if t.growth > MAX_GROWTH]

    @property
    def ok(self) -> bool:
        return not self.failures and not self.superlinear


def _where(exc: BaseException) -> str:
    """The innermost frame of the project's code (else the innermost of all): a failure's
    kind is its exception type and this place, so one bug reached many ways counts once."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "smart_stream" in f.filename or "bench" in f.filename]
    if not (ours or frames):
        return "?"
    frame = (ours or frames)[-1]
    path = Path(frame.filename)
    parts = path.parts
    short = "/".join(parts[parts.index("smart_stream") :]) if "smart_stream" in parts else path.name
    return f"{short}:{frame.lineno} ({frame.name})"


def _record(result: Result, exc: Exception, case: Any, size: int) -> None:
    where = _where(exc)
    kind = f"{type(exc).__name__} at {where}"
    message = str(exc)[:SHOWN]
    known = result.failures.get(kind)
    if known is None:
        result.failures[kind] = Failure(type(exc).__name__, message, where, case, size)
        return
    known.count += 1
    if size < known.size:
        known.case, known.size, known.message = case, size, message


def run_one(target: Target, case: Any, result: Result) -> float:
    """Check one input, recording a failure; returns the CPU seconds it took."""
    size = target.size(case)
    started = time.process_time()
    try:
        target.check(case)
    except Exception as exc:  # anything a check lets out is a finding
        elapsed = time.process_time() - started
        _record(result, exc, case, size)
        return elapsed
    return time.process_time() - started


def fuzz(target: Target, examples: int, result: Result) -> None:
    """``examples`` inputs from the target's strategy, each checked (Hypothesis generates;
    the check records failures instead of raising, so one run finds every kind)."""

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def one(case: Any) -> None:
        result.tried += 1
        elapsed = run_one(target, case, result)
        result.checking += elapsed
        entry = (elapsed, result.tried, case)
        if len(result.candidates) < SLOWEST_KEPT:
            heapq.heappush(result.candidates, entry)
        elif elapsed > result.candidates[0][0]:
            heapq.heapreplace(result.candidates, entry)

    started = time.perf_counter()
    one()
    result.seconds = time.perf_counter() - started
    _confirm_slowest(target, result)


def _confirm_slowest(target: Target, result: Result) -> None:
    """The slowest input is the one still slowest when each candidate is timed again (best
    of a few): one run slowed by the rest of the machine says nothing about the parser."""
    timed = [(best_time(target, case, result), case) for _, _, case in result.candidates]
    if timed:
        seconds, case = max(timed, key=lambda pair: pair[0])
        result.slowest = (seconds, target.size(case), repr(case))


def best_time(target: Target, case: Any, result: Result) -> float:
    """The best of a few runs of the check on ``case`` (a failure is recorded once)."""
    times = [run_one(target, case, result)]
    while len(times) < MAX_REPEATS and (
        len(times) < MIN_REPEATS or sum(times) < MIN_TIMING_SECONDS
    ):
        times.append(run_one(target, case, Result(result.target)))
    return min(times)


def time_shapes(target: Target, result: Result, sizes: tuple[int, ...] = SIZES) -> None:
    """Each worst-case shape timed at each size: its growth in time per byte. A shape that
    grows too much is timed once more and keeps each size's better time, so that a burst
    of other work on the machine is not taken for a quadratic parser."""
    for shape, build in target.shapes.items():
        cases = {size: build(size) for size in sizes}
        timing = Timing(shape, {size: best_time(target, cases[size], result) for size in sizes})
        if timing.growth > MAX_GROWTH:
            again = {size: best_time(target, cases[size], result) for size in sizes}
            timing = Timing(shape, {s: min(t, again[s]) for s, t in timing.seconds.items()})
        result.timings.append(timing)
