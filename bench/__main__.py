"""``python -m bench`` (``make bench``): run every bench, then print one table of figures.

Each bench is also runnable alone (``python -m bench.stream_local`` and so on); ``--quick``
uses smaller sizes and fewer samples. MISS is information, not a failure: the exit code is
non-zero only when a bench itself broke. Raw figures go to bench/out/<bench>.json.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable

from bench import import_time, list_catalog, stream_local, stream_s3
from bench.common import ROOT, Figure, Report, parse_args, print_table

BENCHES: dict[str, Callable[[bool], Report]] = {
    stream_local.NAME: stream_local.run,
    stream_s3.NAME: stream_s3.run,
    list_catalog.NAME: list_catalog.run,
    import_time.NAME: import_time.run,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    figures: list[Figure] = []
    broken = 0
    started = time.perf_counter()
    for name, run in BENCHES.items():
        print(f"\n== {name}{' (quick)' if args.quick else ''}", flush=True)
        bench_started = time.perf_counter()
        try:
            report = run(args.quick)
        except Exception:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            broken += 1
            figures.append(Figure(f"{name}: bench failed", "-", status="BROKEN"))
            continue
        path = report.save()
        figures.extend(report.figures)
        elapsed = time.perf_counter() - bench_started
        print(f"   {name}: {elapsed:.0f}s, raw figures in {path.relative_to(ROOT)}", flush=True)
    total = time.perf_counter() - started
    print_table(figures, f"Smart Stream bench{' (quick)' if args.quick else ''}: {total:.0f}s")
    print("  MISS is information, not a failure; see bench/out/*.json for every sample.")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
