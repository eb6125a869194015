"""Run every benchmark script and write benchmarks/results/LATEST.md: one table of figures, the machine's details.

Each script prints, besides its own report, one line per figure:

    BENCH {"figure": ..., "baseline": ..., "ours": ..., "unit": ..., "ratio": ..., "target": ..., "pass": true,
           "rerun": "..."}

collected here from its output (the report itself goes to the terminal as it runs). `make bench` runs this;
`--quick` passes `--quick` to the scripts that take it, `--note` puts a line at the top of the summary (how it
was run), `--from FILE...` builds the summary from saved outputs instead of running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "LATEST.md"
PREFIX = "BENCH "
# Scripts that take --quick (the others are quick already).
TAKES_QUICK = {
    "dispatch.py",
    "import_memory.py",
    "inbound.py",
    "insight_queries.py",
    "slack_bursts.py",
    "slash_ack.py",
    "workers.py",
}


def scripts() -> list[Path]:
    return sorted(path for path in HERE.glob("*.py") if path.name != "summary.py")


def bench_lines(output: Iterable[str]) -> list[dict[str, Any]]:
    """The BENCH figures of a script's output, in order; other lines are the script's own report."""
    figures = []
    for line in output:
        if line.startswith(PREFIX):
            figures.append(json.loads(line[len(PREFIX) :]))
    return figures


def run(script: Path, quick: bool) -> tuple[list[str], int]:
    """Run one script, echoing its output; its lines and exit status."""
    command = [sys.executable, str(script)] + (["--quick"] if quick and script.name in TAKES_QUICK else [])
    print(f"== {script.relative_to(HERE.parent)}", flush=True)
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=HERE.parent) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
    return lines, process.returncode


def table(figures: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| figure | baseline | ours | ratio | target | pass |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figures:
        unit = f.get("unit") or ""
        passed = "pass" if f.get("pass") else "**FAIL**"
        rows.append(
            f"| {f['figure']} | {_value(f.get('baseline'), unit)} | {_value(f.get('ours'), unit)} | "
            f"{_ratio(f.get('ratio'))} | {f.get('target', '')} | {passed} |"
        )
    return rows


def _value(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,} {unit}".strip() if isinstance(value, (int, float)) else f"{value} {unit}".strip()


def _ratio(value: Any) -> str:
    return "-" if value is None else f"{value:,.3g}"


def cpu_times() -> list[int] | None:
    """The machine's CPU time so far by kind (/proc/stat's first line, in ticks), or None off Linux."""
    try:
        return [int(field) for field in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None


def stolen_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of CPU time the hypervisor gave to other guests between two `cpu_times` (steal, the 8th
    field): on a shared host every figure that is not a ratio slows by about that much, and more."""
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    total = sum(after[:8]) - sum(before[:8])
    return (after[7] - before[7]) / total if total > 0 else None


def machine(stolen: float | None = None) -> list[str]:
    """CPU, RAM, Python, SQLite and PostgreSQL versions, load, CPU steal: what the figures depend on."""
    load = ", ".join(f"{n:.2f}" for n in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    steal = (
        [] if stolen is None else [f"- CPU time stolen by the hypervisor while the scripts ran: {stolen:.0%}"]
    )
    return [
        f"- CPUs: {os.cpu_count()} x {_cpu_model()}",
        f"- RAM: {_ram()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
        f"- SQLite: {sqlite3.sqlite_version}",
        f"- PostgreSQL: {_postgres_version()}",
        f"- load average (1, 5, 15 min) when the summary was written: {load}",
        *steal,
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _postgres_version() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return "not used (TEST_DATABASE_URL unset)"
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as connection:
            version = str(connection.execute(text("SHOW server_version")).scalar_one())
        engine.dispose()
        return version
    except Exception as error:  # the summary is still worth writing
        return f"unreachable ({type(error).__name__})"


def summary(
    figures: list[dict[str, Any]], failed: list[str], note: str | None, stolen: float | None = None
) -> str:
    lines = ["# Benchmarks: latest results", ""]
    if note:
        lines += [f"> {note}", ""]
    passed = sum(1 for f in figures if f.get("pass"))
    lines += [
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` (benchmarks/summary.py): "
        f"{passed} of {len(figures)} figures meet their target. Each ratio is against a baseline measured in "
        "the same run; absolute figures drift with the machine's load.",
        "",
        *table(figures),
        "",
    ]
    if failed:
        lines += ["Scripts that failed (their figures are missing): " + ", ".join(failed), ""]
    lines += ["## Machine", "", *machine(stolen), "", "## Rerun one figure", ""]
    seen = set()
    for f in figures:
        if f.get("rerun") and f["rerun"] not in seen:
            seen.add(f["rerun"])
            lines.append(f"- {f['figure']}: `{f['rerun']}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to the scripts that take it")
    parser.add_argument("--note", help="a line for the top of the summary: how it was run")
    parser.add_argument(
        "--from", dest="saved", type=Path, nargs="+", help="build the summary from saved outputs instead"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    figures: list[dict[str, Any]] = []
    failed: list[str] = []
    stolen = None
    if args.saved:
        for saved in args.saved:
            figures += bench_lines(saved.read_text().splitlines())
    else:
        before = cpu_times()
        for script in scripts():
            lines, status = run(script, args.quick)
            figures += bench_lines(lines)
            if status != 0:
                failed.append(script.name)
        stolen = stolen_share(before, cpu_times())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(summary(figures, failed, args.note, stolen))
    print(f"wrote {args.output} ({len(figures)} figures)")
    if failed or not all(f.get("pass") for f in figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
