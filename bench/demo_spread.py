"""How often the demo's rates fall inside their stated intervals, over many seeds: each seed's
province is planned (not loaded: the figures are counted from the planned events with the
same code that counts them from the store, demo.indicators) and compared with the seed's
rates (demo.compare).

    .venv/bin/python -m bench.demo_spread [--scale 0.01] [--seeds 60]
"""

from __future__ import annotations

import argparse
import time

from demo import compare, indicators
from demo.generator import DemoSize, plan_province
from demo.province import Province


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seeds", type=int, default=60)
    args = parser.parse_args()
    size = DemoSize.at_scale(args.scale)
    province = Province.build(size.townships_per_county)
    started = time.perf_counter()
    inside: dict[str, list[bool]] = {}
    values: dict[str, list[float]] = {}
    p: dict[str, float] = {}
    together = 0
    for seed in range(args.seeds):
        plans, _ = plan_province(province, size, seed)
        figures = indicators.indicators(
            (str(i), plan.kind, step.type, step.data)
            for i, plan in enumerate(plans)
            for step in plan.steps
        )
        comparisons = compare.from_streams(figures)
        together += all(c.within for c in comparisons)
        for c in comparisons:
            inside.setdefault(c.name, []).append(c.within)
            values.setdefault(c.name, []).append(c.value or 0.0)
            p[c.name] = c.spread.p
    print(f"scale {args.scale}, seeds 0..{args.seeds - 1}, each interval {compare.EACH_LEVEL:.4f}")
    for name, hits in inside.items():
        mean = sum(values[name]) / len(values[name])
        print(f"{name}: inside {sum(hits)}/{len(hits)}, mean {mean:.5f}, seed's p {p[name]:.5f}")
    print(f"all inside at once: {together}/{args.seeds} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
