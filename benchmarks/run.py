"""`make bench`: every benchmark in turn (each also runs alone as `python -m benchmarks.<name>`)."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

SUITES = ["ingest", "leaderboards", "notifications"]


def main() -> None:
    wanted = sys.argv[1:] or os.environ.get("BENCH_SUITES", ",".join(SUITES)).split(",")
    for name in wanted:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            print(f"== {name}: not available ({exc})")
            continue
        print(f"\n== {name} ==")
        result = module.main()
        if asyncio.iscoroutine(result):
            asyncio.run(result)


if __name__ == "__main__":
    main()
