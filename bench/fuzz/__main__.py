"""``python -m bench.fuzz`` (``make fuzz``): throw generated inputs at the hand-written
parsers, then print one table. Not part of CI: its findings become fast regression tests in
``tests/unit/test_fuzz_regressions.py``, which CI runs.

Each target gets ``--examples`` inputs from Hypothesis (100,000 by default; a few minutes a
target on 2 cores), then its worst-case shapes are timed at 1 KB, 10 KB, 100 KB and 1 MB.
A target passes when nothing but the parser's own documented errors escaped and no invariant
broke, and when its time per byte grew at most 3x from the smallest size to any larger one.
Unlike the other benches, a finding makes the exit code non-zero: it is a bug, not a figure.
Raw results go to bench/out/fuzz.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from bench.common import ROOT, Report, log
from bench.fuzz import analysis, conditions, mp3, multipart, next_token
from bench.fuzz.engine import MAX_GROWTH, SIZES, Result, Target, fuzz, run_one, time_shapes

NAME = "fuzz"
TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        conditions.TARGET,
        mp3.TARGET,
        analysis.TARGET,
        multipart.TARGET,
        next_token.TARGET,
    )
}
DEFAULT_EXAMPLES = 100_000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"inputs per target (default {DEFAULT_EXAMPLES:,})",
    )
    parser.add_argument(
        "--target",
        action="append",
        choices=sorted(TARGETS),
        help="run only this target (may be given more than once)",
    )
    parser.add_argument(
        "--no-timing", action="store_true", help="skip the linear-time check of each target"
    )
    return parser.parse_args(argv)


def run_target(target: Target, examples: int, timing: bool) -> Result:
    result = Result(target.name)
    if target.prepare is not None:
        target.prepare()
    # One input of each shape first: imports and caches are paid there, not by whichever
    # generated input comes first (which would then pass for the slowest).
    for build in target.shapes.values():
        run_one(target, build(SIZES[0]), result)
    log(f"{target.name}: {examples:,} inputs ({target.about})")
    fuzz(target, examples, result)
    log(
        f"{target.name}: {result.tried:,} inputs in {result.seconds:.0f}s "
        f"({result.checking:.0f} CPU s of them in the check)"
    )
    if timing:
        time_shapes(target, result)
        log(f"{target.name}: {len(target.shapes)} shapes timed, growth {result.growth:.2f}x")
    return result


def print_summary(results: Sequence[Result], title: str) -> None:
    rows = [("target", "inputs tried", "failures", "slowest input", "per-byte growth", "result")]
    for r in results:
        slowest = f"{r.slowest[0] * 1000:.2f} ms ({r.slowest[1]:,} B)" if r.tried else "-"
        growth = f"{r.growth:.2f}x ({r.worst_shape})" if r.timings else "not timed"
        rows.append((r.target, f"{r.tried:,}", str(len(r.failures)), slowest, growth, _verdict(r)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print(line)
    print(line)
    for r in results:
        for kind, failure in r.failures.items():
            print(f"  * {r.target}: {kind} ({failure.count}x): {failure.message}")
            print(f"      shortest input ({failure.size:,} B): {failure.case!r}"[:2000])
        for timing in r.superlinear:
            sizes = ", ".join(f"{s:,} B {t * 1000:.2f} ms" for s, t in timing.seconds.items())
            print(f"  * {r.target}: {timing.shape} grows {timing.growth:.1f}x per byte: {sizes}")
    print(
        f"  per-byte growth: time per byte at the worst size over that at 1 KB (max {MAX_GROWTH}x)"
    )
    sys.stdout.flush()


def _verdict(result: Result) -> str:
    if result.failures:
        return "FAIL"
    if result.superlinear:
        return "SLOW"
    return "PASS" if result.timings else "PASS (untimed)"


def save(results: Sequence[Result], examples: int) -> str:
    report = Report(NAME)
    report.raw["examples"] = examples
    for r in results:
        report.raw[r.target] = {
            "tried": r.tried,
            "seconds": round(r.seconds, 1),
            "failures": {
                kind: {"count": f.count, "message": f.message, "size": f.size, "case": repr(f.case)}
                for kind, f in r.failures.items()
            },
            "slowest": {"seconds": r.slowest[0], "size": r.slowest[1], "case": r.slowest[2]},
            "timings": {t.shape: {str(s): v for s, v in t.seconds.items()} for t in r.timings},
        }
    return str(report.save().relative_to(ROOT))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    names = args.target or list(TARGETS)
    results = [run_target(TARGETS[name], args.examples, not args.no_timing) for name in names]
    total = time.perf_counter() - started
    print_summary(results, f"Smart Stream fuzz: {args.examples:,} inputs a target, {total:.0f}s")
    print(f"  raw results: {save(results, args.examples)}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
