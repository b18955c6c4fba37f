"""`casetrail demo [--scale N] [--seed S]`."""

from __future__ import annotations

import time

import click

from casetrail.presence import describe
from cli.store import open_store, settings_for
from demo import report
from demo.generator import DemoSize, demo_clock, load_demo
from domain.errors import CasetrailError
from projections import engine_for


@click.command("demo")
@click.option(
    "--scale",
    type=float,
    default=0.01,
    show_default=True,
    help="Share of Jiangsu's caseload: 1.0 is 300,000 disputes (a year), 161,757 "
    "resettlement and 85,673 correction cases (six years).",
)
@click.option("--seed", type=int, default=2009, show_default=True, help="Same seed, same cases.")
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
def demo(scale: float, seed: int, data_dir: str | None) -> None:
    """Loads synthetic province data through the same command path as the API, into a new
    or empty store only: its back-dated history could never be removed from a store."""
    settings = settings_for(data_dir)
    size = DemoSize.at_scale(scale)
    ct = open_store(settings, create=True, clock=demo_clock())
    try:
        if ct.app.recorder.max_notification_id():
            raise CasetrailError(
                f"the store in {describe(settings)} already holds cases; the demo's "
                "back-dated synthetic history would mix with them for good (an event store "
                "deletes nothing); expected a new or empty store: casetrail demo --data-dir "
                "DIR (on PostgreSQL, another CASETRAIL_DATABASE_SCHEMA)",
                code="store_not_empty",
            )
        click.echo(f"filling the store in {describe(settings)}")
        bar: click._termui_impl.ProgressBar[int] | None = None

        def on_plan(total: int) -> None:
            nonlocal bar
            click.echo(
                f"{size.disputes} disputes, {size.resettlement} resettlement and "
                f"{size.correction} correction cases: {total} events"
            )
            bar = click.progressbar(length=total, label="loading", show_pos=True, show_eta=True)
            bar.__enter__()

        def progress(n: int) -> None:
            if bar is not None:
                bar.update(n)

        result = load_demo(ct, size, seed=seed, progress=progress, on_plan=on_plan)
        if bar is not None:
            bar.__exit__(None, None, None)
        click.echo(
            f"loaded {result.cases} cases, {result.events} events, {result.units} new units, "
            f"{result.users} users in {result.seconds:.1f} s "
            f"({result.events_per_second:.0f} events/s)"
        )
        started = time.perf_counter()
        applied = engine_for(ct).catch_up()
        click.echo(
            f"read models caught up: {applied} events in {time.perf_counter() - started:.1f} s"
        )
        click.echo(report.markdown(report.province_rows(ct)))
        click.echo(
            f"seed {seed}: each case's outcome is drawn with the seed's rate as its probability; "
            "the last column is the binomial spread at this size: 95% of seeds put all the "
            "rates inside their intervals at once"
        )
        click.echo(f"filled the store in {describe(settings)}")
    finally:
        ct.close()
    if result.kinds_skipped:
        click.echo(f"not loaded (kind not in this build): {', '.join(result.kinds_skipped)}")
