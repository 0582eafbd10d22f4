"""Sweep curves as a small standalone SVG: delivery and p95 latency against the swept value,
one line per routing policy. Written by hand, so plotting needs no library on any machine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from pigeon.sim.sweep import SweepRow

_W, _H, _PAD = 360, 240, 48
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def sweep_svg(title: str, name: str, rows: Sequence[SweepRow]) -> str:
    """An SVG document with two panels side by side."""
    policies = list(dict.fromkeys(row.routing for row in rows))
    panels = [
        _panel("delivery ratio", name, rows, policies, lambda r: r.delivery_ratio, 0),
        _panel("p95 latency (s)", name, rows, policies, lambda r: r.latency_p95_s, _W),
    ]
    legend = "".join(
        f'<text x="{2 * _W - 90}" y="{20 + 16 * i}" fill="{_COLOURS[i % len(_COLOURS)]}" '
        f'font-size="12">{escape(policy)}</text>'
        for i, policy in enumerate(policies)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * _W}" height="{_H + 30}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
        f'<text x="10" y="16" font-size="13">{escape(title)}</text>'
        f"{''.join(panels)}{legend}</svg>\n"
    )


def _panel(
    label: str,
    name: str,
    rows: Sequence[SweepRow],
    policies: list[str],
    measure: Callable[[SweepRow], float | None],
    left: int,
) -> str:
    xs = sorted({row.value for row in rows})
    ys = [y for y in (measure(row) for row in rows) if y is not None]
    x_lo, x_hi = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] + 1.0
    y_hi = max(ys, default=1.0) * 1.1 or 1.0
    top, bottom = 30, _H
    x0, x1 = left + _PAD, left + _W - 16

    def px(x: float) -> float:
        return x0 + (x - x_lo) / (x_hi - x_lo) * (x1 - x0)

    def py(y: float) -> float:
        return bottom - y / y_hi * (bottom - top - 10)

    parts = [
        f'<line x1="{x0}" y1="{bottom}" x2="{x1}" y2="{bottom}" stroke="black"/>',
        f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{bottom}" stroke="black"/>',
        f'<text x="{x0}" y="{top - 4}" font-size="12">{escape(label)}</text>',
        f'<text x="{x1 - 60}" y="{bottom + 26}" font-size="12">{escape(name)}</text>',
        f'<text x="{x0 - 40}" y="{py(y_hi / 1.1) + 4:.1f}" font-size="10">{y_hi / 1.1:.3g}</text>',
        f'<text x="{x0 - 12}" y="{bottom + 4}" font-size="10">0</text>',
    ]
    parts += [
        f'<text x="{px(x) - 8:.1f}" y="{bottom + 14}" font-size="10">{x:g}</text>' for x in xs
    ]
    for i, policy in enumerate(policies):
        points = [
            (px(row.value), py(y))
            for row in rows
            if row.routing == policy and (y := measure(row)) is not None
        ]
        colour = _COLOURS[i % len(_COLOURS)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    return "".join(parts)
