"""The streaming verifier: memory does not grow with the store, and several processes
over ranges of the log give the report one process gives."""

from __future__ import annotations

import sqlite3
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.projections import load, units
from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from cli.main import main
from domain.clock import FixedClock


def loaded(path: Path, cases: int) -> tuple[Casetrail, Settings]:
    settings = Settings(data_dir=path / "var")
    clock = FixedClock(datetime(2025, 1, 2, 1, 0, tzinfo=UTC))
    ct = bootstrap(settings, clock=clock)
    ct.directory.load_units(units())
    load(ct, clock, cases)
    ct.audit.write_checkpoint()
    return ct, settings


def peak_of_verify(ct: Casetrail) -> tuple[int, int]:
    """(events checked, peak bytes allocated by Python while verifying)."""
    tracemalloc.start()
    try:
        report = ct.audit.verify()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok, report.problems[:3]
    return report.checked_events, peak


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_verifying_three_times_the_events_takes_no_more_memory(tmp_path: Path) -> None:
    small, _ = loaded(tmp_path / "small", 4_000)
    large, _ = loaded(tmp_path / "large", 12_000)
    try:
        small_events, small_peak = peak_of_verify(small)
        large_events, large_peak = peak_of_verify(large)
    finally:
        small.close()
        large.close()
    assert large_events > 2.8 * small_events > 50_000
    growth = large_peak - small_peak
    print(
        f"peak while verifying: {small_events} events {small_peak / 2**20:.1f} MiB, "
        f"{large_events} events {large_peak / 2**20:.1f} MiB"
    )
    # Holding the store took 1.7 KiB an event (about 68 MiB more here).
    assert growth < 6 * 2**20, f"{growth / 2**20:.1f} MiB more for {large_events - small_events}"


def test_processes_over_ranges_report_what_one_process_reports(tmp_path: Path) -> None:
    ct, settings = loaded(tmp_path, 700)  # more than 3,000 events: four ranges
    ct.close()
    with sqlite3.connect(settings.sqlite_path) as conn:
        rowid, state = conn.execute(
            "SELECT rowid, state FROM stored_events ORDER BY rowid LIMIT 1 OFFSET 2100"
        ).fetchone()
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?",
            (bytes([state[0] ^ 1]) + state[1:], rowid),
        )
    env = {"CASETRAIL_DATA_DIR": str(settings.data_dir)}
    runner = CliRunner()
    one = runner.invoke(main, ["audit", "verify", "--json"], env=env, catch_exceptions=False)
    two = runner.invoke(
        main, ["audit", "verify", "--json", "--processes", "2"], env=env, catch_exceptions=False
    )
    assert one.exit_code == two.exit_code == 1
    assert one.output == two.output
    assert '"data_altered"' in one.output and '"log_rewritten"' in one.output
