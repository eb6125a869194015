"""CLI start-up: the wall time of `nps --help` and `nps alerts` against `python -c pass`, alternated, and ratios.

`nps --help` and the simple commands should not import what only `nps serve` or a send needs (slack_bolt,
twilio, fastapi, uvicorn, matplotlib, jinja2, phonenumbers): each costs tens of milliseconds on every call.
`nps alerts` (on a migrated SQLite database in a temporary directory) stands for the simple commands that
only read the database. Runs are alternated (pass, help, alerts, pass...) so a busy machine slows all alike;
the medians are compared. Also prints the modules `import service.cli` loads from that heavy list (target: none).
`--runs N` sets the number of pairs (default 15). Run with `make bench`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    *("slack_bolt", "slack_sdk", "twilio", "fastapi", "uvicorn", "matplotlib", "jinja2", "phonenumbers"),
    *("sqlalchemy", "alembic", "rich"),
)
TARGET_RATIO = 4.0


def wall_time(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
    nps = [sys.executable, "-c", "from service.cli import main; main()", "--env-file", os.devnull]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/nps.db"}
        wall_time([*nps, "db", "upgrade"], env)  # also warms the file cache and the .pyc files
        bare: list[float] = []
        help_: list[float] = []
        alerts: list[float] = []
        for _ in range(runs):
            bare.append(wall_time(baseline))
            help_.append(wall_time([*nps, "--help"]))
            alerts.append(wall_time([*nps, "alerts"], env))
    bare_ms = statistics.median(bare) * 1000
    ratio = statistics.median(help_) * 1000 / bare_ms
    print(f"python -c pass: {bare_ms:.0f} ms (median of {runs})")
    for name, times in (("nps --help", help_), ("nps alerts", alerts)):
        median_ms = statistics.median(times) * 1000
        print(f"{name}: {median_ms:.0f} ms   ratio {median_ms / bare_ms:.1f}")
    loaded = heavy_modules_loaded()
    print(f"heavy modules imported by `import service.cli`: {', '.join(loaded) or 'none'}")
    print(f"target: nps --help ratio < {TARGET_RATIO}: {'met' if ratio < TARGET_RATIO else 'NOT met'}")


if __name__ == "__main__":
    main()
