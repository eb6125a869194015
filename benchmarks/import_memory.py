"""Contacts import memory: the peak RSS growth of `import_contacts` for a small and a large CSV file.

The import streams (bounded batches in, bounded batches written), so the growth should be the same for a file
ten times the size: the ratio large / small near 1 (target < 1.5). Each import runs in a fresh process on a fresh
SQLite database in a temporary directory. Default sizes 20 MB and 200 MB (1.9 million rows: the import takes
minutes, at the speed of benchmarks/import_contacts.py); `--size MB` sets the large one (the small one is a
tenth), `--quick` is 2 MB and 20 MB for a smoke run. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaigns.contacts.importer import import_contacts
from storage.db import Database, upgrade

TARGET_MEMORY_RATIO = 1.5
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/Paris", "Australia/Sydney"]


def write_csv(path: Path, size_bytes: int) -> int:
    """A contacts file of at least `size_bytes`, written row by row; returns the number of rows."""
    rng = random.Random(7)
    rows = written = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        written += out.write("external_id,name,phone,email,locale,timezone,plan,region,note\n")
        while written < size_bytes:
            written += out.write(
                f"c{rows},Person {rows},+49151{rng.randrange(10**7, 10**8)},p{rows}@example.com,de,"
                f"{rng.choice(ZONES)},{rng.choice(['free', 'pro', 'enterprise'])},"
                f"{rng.choice(['EU', 'US', 'APAC'])},customer since {2000 + rows % 25}\n"
            )
            rows += 1
    return rows


def peak_rss_kib() -> int:
    """The peak resident set of this process (VmHWM), in KiB; not ru_maxrss, which a child inherits."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux; only a fallback


def bench(
    figure: str,
    baseline: float | None,
    ours: float,
    unit: str,
    ratio: float | None,
    target: str,
    passed: bool,
    rerun: str,
) -> None:
    """One figure as the BENCH line benchmarks/summary.py collects for benchmarks/results/LATEST.md."""
    values = {"figure": figure, "baseline": baseline, "ours": ours, "unit": unit, "ratio": ratio}
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}
    print("BENCH " + json.dumps({**rounded, "target": target, "pass": bool(passed), "rerun": rerun}))


def memory_child(url: str, csv_path: str) -> None:
    """In a fresh process: import the file; prints the peak RSS before and after, in KiB."""
    db = Database.connect(url)
    baseline = peak_rss_kib()
    started = time.perf_counter()
    with open(csv_path, "rb") as source:
        report = import_contacts(source, db=db)
    elapsed = time.perf_counter() - started
    peak = peak_rss_kib()
    db.dispose()
    assert report.ok, report.problems[:3]
    print(
        json.dumps({"baseline_kib": baseline, "peak_kib": peak, "rows": report.created, "seconds": elapsed})
    )


def memory_run(directory: Path, size_mb: float) -> dict[str, float]:
    csv_path = directory / f"contacts-{size_mb:g}mb.csv"
    rows = write_csv(csv_path, int(size_mb * 1_000_000))
    url = f"sqlite:///{directory / f'import-{size_mb:g}mb.db'}"
    db = Database.connect(url)
    upgrade(db.engine)
    db.dispose()
    command = [sys.executable, __file__, "--memory-child", url, str(csv_path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    run: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    assert run["rows"] == rows, (run["rows"], rows)
    csv_path.unlink()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=float, default=200.0, metavar="MB", help="the large file (default 200)"
    )
    parser.add_argument("--quick", action="store_true", help="2 MB and 20 MB, for a smoke run")
    parser.add_argument("--memory-child", nargs=2, metavar=("URL", "CSV"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    large = 20.0 if args.quick else args.size
    sizes = (large / 10, large)
    growth = []
    print("contacts import: peak RSS growth of one `import_contacts` (fresh process, SQLite)")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            run = memory_run(Path(tmp), size)
            growth.append((run["peak_kib"] - run["baseline_kib"]) / 1024)
            print(
                f"  {size:>7,.1f} MB file, {run['rows']:>10,.0f} rows  {growth[-1]:>8,.1f} MiB  "
                f"({run['peak_kib'] / 1024:,.0f} MiB peak, {run['seconds']:,.0f} s)"
            )
    ratio = growth[1] / max(growth[0], 0.1)
    ok = "yes" if ratio < TARGET_MEMORY_RATIO else "NO"
    print(
        f"  memory ratio {sizes[1]:g} MB / {sizes[0]:g} MB: {ratio:.2f}  (target < {TARGET_MEMORY_RATIO}: {ok})"
    )
    bench(
        f"contacts import peak RSS growth, {sizes[1]:g} MB file (baseline: {sizes[0]:g} MB file)",
        growth[0],
        growth[1],
        "MiB",
        ratio,
        f"ratio < {TARGET_MEMORY_RATIO}",
        ratio < TARGET_MEMORY_RATIO,
        ".venv/bin/python benchmarks/import_memory.py" + (" --quick" if args.quick else ""),
    )


if __name__ == "__main__":
    main()
