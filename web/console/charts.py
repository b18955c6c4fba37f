"""Charts as inline SVG geometry, computed here and drawn by the templates: no script and
nothing from another host. A chart is a list of bars (or points) already scaled to the
chart's box; the template only places them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

WIDTH = 640
HEIGHT = 220
LEFT = 48  # room for the axis labels
BOTTOM = 40
TOP = 16


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    shown: str  # the value as the page says it
    x: float
    y: float
    width: float
    height: float
    href: str | None = None


@dataclass
class Chart:
    title: str
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)  # (y, label)
    line: str = ""  # an SVG polyline's points, for a trend
    width: int = WIDTH
    height: int = HEIGHT
    baseline: float = HEIGHT - BOTTOM


def _nice_top(highest: float) -> float:
    if highest <= 0:
        return 1.0
    step = 10 ** (len(str(int(highest))) - 1) if highest >= 1 else 0.1
    top = step
    while top < highest:
        top += step
    return top


def bar_chart(
    title: str,
    items: Sequence[tuple[str, float, str, str | None]],
    *,
    with_line: bool = False,
) -> Chart:
    """`items`: (label, value, shown, link) in order; bars scaled to the highest value."""
    chart = Chart(title=title)
    if not items:
        return chart
    top = _nice_top(max(value for _, value, _, _ in items))
    inner_w = WIDTH - LEFT - 8
    inner_h = HEIGHT - BOTTOM - TOP
    slot = inner_w / len(items)
    width = max(min(slot * 0.7, 60.0), 2.0)
    points = []
    for index, (label, value, shown, href) in enumerate(items):
        height = inner_h * (value / top) if top else 0.0
        x = LEFT + slot * index + (slot - width) / 2
        y = TOP + inner_h - height
        chart.bars.append(
            Bar(
                label=label,
                value=value,
                shown=shown,
                x=round(x, 1),
                y=round(y, 1),
                width=round(width, 1),
                height=round(max(height, 0.0), 1),
                href=href,
            )
        )
        points.append(f"{round(x + width / 2, 1)},{round(y, 1)}")
    for step in range(5):
        fraction = step / 4
        value = top * fraction
        label = f"{value:.0f}" if top >= 4 else f"{value:.2f}"
        chart.ticks.append((round(TOP + inner_h * (1 - fraction), 1), label))
    if with_line:
        chart.line = " ".join(points)
    return chart
