"""Rebuilding read models: a new generation filled from event 1 while queries read the
active one, then switched to in one transaction. The fill may be split over processes
(`plan_groups`): whole read models, and shares of cases of a partitionable one.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterable
from typing import Any

from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from projections.generations import Generations
from projections.readmodel import Projection
from projections.tracking import (
    SHARE_BUCKETS,
    Conflict,
    share_label,
    share_names,
    share_tracking_name,
    tracking_name,
)

# A rebuild fills a generation nobody reads yet: bigger transactions, fewer commits.
REBUILD_BATCH_SIZE = 5000


def plan_groups(
    weights: dict[str, float], partitionable: set[str], processes: int
) -> list[tuple[dict[str, float], dict[str, tuple[int, int]]]]:
    """Splits read models over `processes` groups of about equal weight: whole read models
    first (heaviest first, each to the lightest group), then the partitionable ones in
    shares of buckets that level the groups (water-filling). Returns, per non-empty
    group, its whole read models and its shares ({name: (lo, hi)})."""
    count = max(1, processes)
    loads = [0.0] * count
    whole: list[dict[str, float]] = [{} for _ in range(count)]
    for name in sorted(weights, key=lambda n: (-weights[n], n)):
        if name in partitionable:
            continue
        lightest = loads.index(min(loads))
        whole[lightest][name] = weights[name]
        loads[lightest] += weights[name]
    shares: list[dict[str, tuple[int, int]]] = [{} for _ in range(count)]
    for name in sorted(partitionable & set(weights)):
        weight = weights[name]
        ordered = sorted(range(count), key=lambda i: loads[i])
        level = 0.0
        for k in range(1, count + 1):
            level = (sum(loads[i] for i in ordered[:k]) + weight) / k
            if k == count or level <= loads[ordered[k]]:
                break
        lo = 0
        takers = [i for i in ordered if level - loads[i] > 0]
        for n, i in enumerate(takers):
            part = (level - loads[i]) / weight
            hi = (
                SHARE_BUCKETS
                if n == len(takers) - 1
                else min(SHARE_BUCKETS, lo + round(part * SHARE_BUCKETS))
            )
            if hi > lo:
                shares[i][name] = (lo, hi)
                loads[i] += weight * (hi - lo) / SHARE_BUCKETS
            lo = hi
        if len([i for i in range(count) if name in shares[i]]) == 1:
            # One share of everything: the read model is filled whole.
            for i in range(count):
                if shares[i].pop(name, None) is not None:
                    whole[i][name] = weight
    return [(whole[i], shares[i]) for i in range(count) if whole[i] or shares[i]]


class Rebuilds(Generations):
    """What rebuilding adds to the generations; the engine applies the batches."""

    rebuild_batch_size: int

    def run_batches(
        self,
        generations: dict[str, int],
        *,
        switch: bool = False,
        limit: int | None = None,
        shares: dict[str, tuple[int, int]] | None = None,
        stop: int | None = None,
    ) -> tuple[bool, int | None]:
        raise NotImplementedError  # projections.engine.Engine

    def rebuild(self, name: str, *, on_batch: Any = None) -> int:
        """Builds a new generation of one read model; see `rebuild_many`."""
        if name not in self.projections:
            raise KeyError(name)
        return self.rebuild_many([name], on_batch=on_batch)[name]

    def rebuild_many(
        self,
        names: Iterable[str] | None = None,
        *,
        on_batch: Any = None,
        processes: int = 1,
        max_seconds: float | None = None,
    ) -> dict[str, int]:
        """Builds a new generation of each read model from event 1, in one pass over the
        log, and switches each to it once caught up. Returns the new generations.

        Queries keep reading the active generations meanwhile. A building generation left
        by an interrupted rebuild is resumed. The tables are filled in large batches with
        no secondary index; the indexes are built once the generation has caught up, then
        the last events are applied and the pointer switched in one transaction.

        With `processes` > 1, the read models are split into that many groups of about
        equal `weight` and each group is filled by a process of its own (each reads the
        log itself); a `partitionable` read model (the case list) is split by case into
        shares where that levels the groups. This process then merges the shares,
        applies what came after and switches.
        With `max_seconds`, stops filling after that long and returns {} (the next call
        resumes).
        """
        started = time.monotonic()
        self.setup()
        chosen = list(names) if names is not None else list(self.projections)
        for name in chosen:
            if name not in self.projections:
                raise KeyError(name)
        self.drop_retired()
        generations = {name: self._new_generation(name) for name in chosen}
        if processes > 1:
            self._fill_in_processes(generations, processes)
        for name, generation in generations.items():
            # Shares (of the processes above, or of an interrupted rebuild) become one.
            self._merge_shares(name, generation)
        while not self.run_batches(generations, limit=self.rebuild_batch_size)[0]:
            if on_batch is not None:
                on_batch(min(self.position(n, g) for n, g in generations.items()))
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                return {}
        for name, generation in generations.items():
            self._retry(lambda n=name, g=generation: self._create_indexes(n, g))
        pending = dict(generations)
        while pending:
            self.run_batches(pending, switch=True, limit=self.rebuild_batch_size)
            # A generation stopped at a parked event is not switched to (the active one
            # keeps answering) until the event is retried or skipped.
            pending = {
                n: g
                for n, g in pending.items()
                if self.active_generation(n) != g and not self.stopped(n, g)
            }
        if on_batch is not None:
            on_batch(min(self.position(n, g) for n, g in generations.items()))
        for name, generation in generations.items():
            self.analyze(name, generation)
        return generations

    def stopped(self, name: str, generation: int) -> bool:
        """Whether a generation stopped at an event it cannot apply (projections.parked)."""
        return False

    def _fill_in_processes(self, generations: dict[str, int], processes: int) -> None:
        """Fills the building generations up to the head, one group per child process."""
        groups = plan_groups(
            {name: self.projections[name].weight for name in generations},
            {name for name in generations if self.projections[name].partitionable},
            processes,
        )
        if len(groups) < 2:
            return
        for name in generations:
            ranges = [shares[name] for _, shares in groups if name in shares]
            if ranges:
                self._open_shares(name, generations[name], ranges)
        context = multiprocessing.get_context("spawn")
        children = [
            context.Process(
                target=_fill_generations,
                args=(
                    type(self),
                    self.ct.settings,
                    [self.projections[name] for name in [*whole, *shares]],
                    {name: generations[name] for name in [*whole, *shares]},
                    self.rebuild_batch_size,
                    shares,
                ),
                name="rebuild-" + "+".join([*whole, *map(share_label, shares.items())]),
            )
            for whole, shares in groups
        ]
        for child in children:
            child.start()
        for child in children:
            child.join()
        failed = [child.name for child in children if child.exitcode != 0]
        if failed:
            raise RuntimeError(f"rebuild processes failed: {', '.join(failed)}")

    def _open_shares(self, name: str, generation: int, shares: list[tuple[int, int]]) -> None:
        """Tracking records for shares of a building generation, each starting where the
        generation's own record is (shares of an interrupted rebuild are kept if they
        are these; others are merged first)."""
        existing = self._shares(name, generation)
        if existing and set(existing) != set(shares):
            self._merge_shares(name, generation)
            existing = {}
        if existing:
            return
        main = tracking_name(name, generation)
        with self.db.writer(), self.db.transaction() as cur:
            # Claims the generation's record (a whole batch of another process waits or
            # fails its claim), so that the shares start exactly where it stands.
            row = cur.execute(
                f"UPDATE {self.tracking_table} SET notification_id = notification_id "
                "WHERE application_name = ? RETURNING notification_id",
                (main,),
            ).fetchone()
            start = int(row["notification_id"]) if row else 0
            for share in shares:
                cur.execute(
                    f"INSERT INTO {self.tracking_table} (application_name, notification_id) "
                    "VALUES (?, ?) ON CONFLICT (application_name) DO NOTHING",
                    (share_tracking_name(name, generation, share), start),
                )

    def _merge_shares(self, name: str, generation: int) -> None:
        """Brings every share of a building generation to the same position and folds
        them into the generation's own tracking record, in one transaction. After it the
        generation is filled by whole batches again."""
        main = tracking_name(name, generation)
        while True:
            shares = self._shares(name, generation)
            if not shares:
                return
            target = max(shares.values())
            for share, position in shares.items():
                while position < target:
                    self.run_batches(
                        {name: generation},
                        shares={name: share},
                        stop=target,
                        limit=self.rebuild_batch_size,
                    )
                    found = self._share_position(name, generation, share)
                    if found is None:
                        break  # merged by another process
                    position = found
            try:
                with self.db.writer(), self.db.transaction() as cur:
                    for share in shares:
                        claimed = cur.execute(
                            f"UPDATE {self.tracking_table} SET notification_id = notification_id "
                            "WHERE application_name = ? AND notification_id = ? "
                            "RETURNING notification_id",
                            (share_tracking_name(name, generation, share), target),
                        ).fetchone()
                        if claimed is None:
                            raise Conflict(name)
                    if self._shares(name, generation, cur) != dict.fromkeys(shares, target):
                        raise Conflict(name)
                    cur.execute(
                        f"UPDATE {self.tracking_table} SET notification_id = ? "
                        "WHERE application_name = ? AND notification_id <= ?",
                        (target, main, target),
                    )
                    cur.execute(
                        f"DELETE FROM {self.tracking_table} "
                        "WHERE application_name > ? AND application_name < ?",
                        share_names(name, generation),
                    )
            except Conflict:
                continue  # another process moved a share or merged them; look again


def default_rebuild_processes() -> int:
    """Two processes where there are two cores: the read models and shares of the case
    list split between them by weight (plan_groups); each reads the log itself, and on
    SQLite they write in turn (Database.writer). More would only add log reads."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _fill_generations(
    engine_class: type[Rebuilds],
    settings: Settings,
    projections: list[Projection],
    generations: dict[str, int],
    batch_size: int,
    shares: dict[str, tuple[int, int]] | None = None,
) -> None:
    """A rebuild's child process: fills these building generations (of these shares)
    up to the head."""
    ct = bootstrap(settings, seed_units=False)
    try:
        engine = engine_class(ct, projections)
        while not engine.run_batches(generations, limit=batch_size, shares=shares)[0]:
            pass
    finally:
        ct.close()
