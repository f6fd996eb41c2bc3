"""Run the fuzz suite and print the counts per class (ok, clear, raw, nonfinite, hang, wrong).

Usage (from the repository root)::

    python -m tests.fuzz.counts            # fast profile (the CI one)
    python -m tests.fuzz.counts --long     # long profile (150 examples per callable), by hand
    python -m tests.fuzz.counts --long --examples 400 --out fuzz_counts.json

The same counts are printed at the end of any ``pytest tests/fuzz`` run; ``FUZZ_COUNTS=path`` also
writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--long", action="store_true", help="the long profile (FUZZ_PROFILE=long)")
    ap.add_argument("--examples", type=int, help="examples per callable (FUZZ_EXAMPLES)")
    ap.add_argument("--timeout", type=float, help="per-call time limit in seconds (FUZZ_TIMEOUT)")
    ap.add_argument("-k", dest="keyword", help="only the targets matching this pytest -k expression")
    ap.add_argument("--out", help="also write the counts as JSON here")
    args = ap.parse_args(argv)
    os.environ["FUZZ_PROFILE"] = "long" if args.long else "fast"
    if args.examples:
        os.environ["FUZZ_EXAMPLES"] = str(args.examples)
    if args.timeout:
        os.environ["FUZZ_TIMEOUT"] = str(args.timeout)
    out = args.out or os.path.join(tempfile.mkdtemp(), "fuzz_counts.json")
    os.environ["FUZZ_COUNTS"] = out
    import pytest

    here = os.path.dirname(os.path.abspath(__file__))
    pargs = [here, "-q", "-p", "no:cacheprovider"] + (["-k", args.keyword] if args.keyword else [])
    rc = pytest.main(pargs)
    with open(out) as fh:
        data = json.load(fh)
    tot = data["totals"]
    print("\nclass      count")
    for c in ("ok", "clear", "raw", "nonfinite", "hang", "wrong"):
        print(f"{c:10s} {tot.get(c, 0):6d}")
    print(f"{'calls':10s} {sum(tot.values()):6d}   (profile {data['profile']}; per target in {out})")
    return int(rc)


if __name__ == "__main__":
    sys.exit(main())
