"""Opening the store for a command: the settings, with `--data-dir` applied, and the store
itself; only the commands meant to make a store (`init`, `up`, `demo`) may create one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from casetrail.bootstrap import Casetrail, bootstrap
from casetrail.config import Settings
from casetrail.events import AppendListener
from casetrail.presence import check_reachable, require_store
from domain.clock import Clock
from domain.errors import CasetrailError
from web.messages import CHINESE, MESSAGES_ZH, language_from_env


def settings_for(data_dir: str | Path | None = None) -> Settings:
    settings = Settings.from_env()
    if data_dir:
        settings = settings.with_(data_dir=Path(data_dir).resolve())
    return settings


def open_store(
    settings: Settings,
    *,
    create: bool = False,
    clock: Clock | None = None,
    on_append: AppendListener | None = None,
) -> Casetrail:
    """The casetrail on the store `settings` name; `NoStore` if there is none, unless
    `create`."""
    if create:
        check_reachable(settings)
    else:
        require_store(settings)
    return bootstrap(settings, clock=clock, on_append=on_append)


def build(data_dir: str | None = None) -> Casetrail:
    """The casetrail on an existing store (the data directory from `--data-dir`, else the
    environment)."""
    return open_store(settings_for(data_dir))


def report(error: CasetrailError) -> None:
    """One line per problem, `error (code): message`, on stderr; in Chinese under
    `LANG=zh_CN.UTF-8` or `CASETRAIL_LANG=zh` (the summary for the code, then the
    specifics, which name variables, paths and fields, as they are)."""
    lines = error.message.splitlines() or [""]
    chinese = MESSAGES_ZH.get(error.code) if language_from_env() == CHINESE else None
    if chinese is not None:
        lines = [chinese, *(f"  {line}" for line in lines)]
    for line in lines:
        click.echo(f"error ({error.code}): {line}", err=True)


def refuse(error: CasetrailError) -> NoReturn:
    report(error)
    sys.exit(2)
