"""`python -m chaos --seed S --trials N` (make chaos): a batch of trials, as a table and a
summary; exit status 1 if any invariant failed. `--trial SEED` runs one trial again."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from chaos.report import HEADER, row, summary
from chaos.trial import TrialResult, available_stores, batch_seeds, run_trials


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stores = (args.store,) if args.store != "both" else available_stores()
    seeds = [args.trial] if args.trial is not None else batch_seeds(args.seed, args.trials)
    root = Path(args.keep or tempfile.mkdtemp(prefix="keel-chaos-"))
    print(f"keel chaos: seed {args.seed}, {len(seeds)} trials, {args.parallel} at a time, "
          f"stores {', '.join(stores)}; failed trials keep their files under {root}",
          flush=True)
    print(HEADER, flush=True)
    printing = threading.Lock()

    def show(result: TrialResult) -> None:
        with printing:
            print(row(result), flush=True)

    started = time.monotonic()
    results = run_trials(seeds, root, stores=stores, parallel=args.parallel, on_result=show)
    print(summary(results, time.monotonic() - started), flush=True)
    if any(not r.ok or r.obs.problems for r in results):
        return 1 if any(not r.ok for r in results) else 0
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=int(time.time()),
                        help="the batch's seed (default: the time, printed)")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--trial", type=int, help="run only the trial with this seed (with the "
                                                  "stores its batch had: they are among its "
                                                  "choices)")
    parser.add_argument("--parallel", type=int, default=2, help="trials at a time")
    parser.add_argument("--store", choices=["both", "sqlite", "postgres"], default="both")
    parser.add_argument("--keep", help="the directory for the trials' files")
    return parser


if __name__ == "__main__":
    sys.exit(main())
