"""CLI start-up: the wall time of `nps --help` against `python -c pass`, alternated, and the ratio.

`nps --help` and the simple commands should not import what only `nps serve` or a send needs (slack_bolt,
twilio, fastapi, uvicorn, matplotlib, jinja2, phonenumbers): each costs tens of milliseconds on every call.
Runs are alternated (pass, help, pass, help...) so a busy machine slows both alike; the median of each is
compared. Also prints the modules `import service.cli` loads from that heavy list (target: none).
`--runs N` sets the number of pairs (default 15). Run with `make bench`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("slack_bolt", "slack_sdk", "twilio", "fastapi", "uvicorn", "matplotlib", "jinja2", "phonenumbers")
TARGET_RATIO = 4.0


def wall_time(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heavy_modules_loaded() -> list[str]:
    probe = f"import sys, service.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    baseline = [sys.executable, "-c", "pass"]
    help_ = [sys.executable, "-c", "from service.cli import main; main()", "--help"]
    wall_time(help_)  # warm the file cache and the .pyc files
    bare, nps = [], []
    for _ in range(runs):
        bare.append(wall_time(baseline))
        nps.append(wall_time(help_))
    bare_ms, nps_ms = statistics.median(bare) * 1000, statistics.median(nps) * 1000
    ratio = nps_ms / bare_ms
    print(
        f"python -c pass: {bare_ms:.0f} ms   nps --help: {nps_ms:.0f} ms   ratio {ratio:.1f} (median of {runs})"
    )
    loaded = heavy_modules_loaded()
    print(f"heavy modules imported by `import service.cli`: {', '.join(loaded) or 'none'}")
    print(f"target: ratio < {TARGET_RATIO}: {'met' if ratio < TARGET_RATIO else 'NOT met'}")


if __name__ == "__main__":
    main()
