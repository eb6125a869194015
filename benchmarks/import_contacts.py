"""Contacts import throughput: 100,000 CSV rows through `import_contacts` on SQLite.

Prints the time against the one-minute budget and the speed against a naive importer (one row, one
transaction) measured in the same run. Run with `make bench`.
"""

from __future__ import annotations

import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaigns.contacts.csv_file import CsvRow, read_contacts_csv
from campaigns.contacts.importer import import_contacts
from campaigns.contacts.store import upsert_contacts
from campaigns.contacts.validation import validate_contact
from storage.db import Database, upgrade

ROWS = 100_000
NAIVE_ROWS = 3_000
BUDGET_SECONDS = 60.0
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/Paris", "Australia/Sydney"]


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


def make_csv(rows: int) -> bytes:
    rng = random.Random(7)
    lines = ["external_id,name,phone,email,locale,timezone,plan,region"]
    for i in range(rows):
        lines.append(
            f"c{i},Person {i},+49151{rng.randrange(10**7, 10**8)},p{i}@example.com,de,"
            f"{rng.choice(ZONES)},{rng.choice(['free', 'pro', 'enterprise'])},{rng.choice(['EU', 'US', 'APAC'])}"
        )
    return ("\n".join(lines) + "\n").encode()


def fresh_db(directory: Path, name: str) -> Database:
    db = Database.connect(f"sqlite:///{directory / name}")
    upgrade(db.engine)
    return db


def naive_rows_per_second(data: bytes, db: Database) -> float:
    started = time.perf_counter()
    count = 0
    for item in read_contacts_csv(io.BytesIO(data)):
        if isinstance(item, CsvRow):
            with db.transaction() as session:
                upsert_contacts([validate_contact(item.values)], session=session)
            count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    data = make_csv(ROWS)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        naive = naive_rows_per_second(make_csv(NAIVE_ROWS), fresh_db(directory, "naive.db"))
        db = fresh_db(directory, "batched.db")
        started = time.perf_counter()
        report = import_contacts(io.BytesIO(data), db=db)
        elapsed = time.perf_counter() - started
    assert report.ok and report.created == ROWS, report.problems[:3]
    ours = ROWS / elapsed
    print(f"import {ROWS} rows: {elapsed:.1f} s ({ours:,.0f} rows/s)")
    print(
        f"budget ratio (time / {BUDGET_SECONDS:.0f} s): {elapsed / BUDGET_SECONDS:.2f}  (target < 1, well under)"
    )
    print(f"naive one-row-per-transaction: {naive:,.0f} rows/s; speed-up ratio: {ours / naive:.1f}x")
    bench(
        f"contacts import, {ROWS:,} rows, SQLite (baseline: one row a transaction)",
        naive,
        ours,
        "rows/s",
        ours / naive,
        f"{ROWS:,} rows in < {BUDGET_SECONDS:.0f} s",
        elapsed < BUDGET_SECONDS,
        ".venv/bin/python benchmarks/import_contacts.py",
    )


if __name__ == "__main__":
    main()
