"""``python -m bench`` (``make bench``): run every bench, then print one table of figures.

Each bench is also runnable alone (``python -m bench.stream_local`` and so on); ``--quick``
uses smaller sizes and fewer samples, ``--full`` adds the big sizes that would take the run
well past 10 minutes (the 1 GB metadata file, the queue of 30 s files). MISS is information,
not a failure: the exit code is non-zero only when a bench itself broke. Raw figures go to
bench/out/<bench>.json.
"""

from __future__ import annotations

import sys
import time
import traceback

from bench import (
    catalogue_rate,
    convert,
    import_time,
    list_catalog,
    metadata_reads,
    queue_stream,
    stream_local,
    stream_s3,
    tts_local,
)
from bench.common import ROOT, Figure, Run, mode_label, parse_args, print_table

BENCHES: dict[str, Run] = {
    stream_local.NAME: stream_local.run,
    stream_s3.NAME: stream_s3.run,
    list_catalog.NAME: list_catalog.run,
    import_time.NAME: import_time.run,
    metadata_reads.NAME: metadata_reads.run,
    catalogue_rate.NAME: catalogue_rate.run,
    queue_stream.NAME: queue_stream.run,
    tts_local.NAME: tts_local.run,
    convert.NAME: convert.run,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    figures: list[Figure] = []
    broken = 0
    started = time.perf_counter()
    for name, run in BENCHES.items():
        print(f"\n== {name}{mode_label(args)}", flush=True)
        bench_started = time.perf_counter()
        try:
            report = run(args.quick, args.full)
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
    print_table(figures, f"Smart Stream bench{mode_label(args)}: {total:.0f}s")
    print("  MISS is information, not a failure; see bench/out/*.json for every sample.")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
