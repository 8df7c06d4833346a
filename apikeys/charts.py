"""A key's daily requests as bars for a server-rendered SVG: no chart library, no script."""

from __future__ import annotations

from datetime import date

WIDTH, HEIGHT, GAP = 600, 120, 4


def usage_bars(days: list[tuple[date, int]]) -> dict:
    """Return the bars (x, y, width, height, label) and totals for `apikeys/_usage_chart.html`."""
    peak = max((count for _day, count in days), default=0)
    slot = WIDTH / max(len(days), 1)
    bars = []
    for i, (day, count) in enumerate(days):
        height = round(HEIGHT * count / peak, 1) if peak else 0
        # A day with requests always shows at least a sliver.
        height = max(height, 2) if count else 0
        bars.append(
            {
                "x": round(i * slot + GAP / 2, 1),
                "y": round(HEIGHT - height, 1),
                "width": round(slot - GAP, 1),
                "height": height,
                "label": f"{day:%b} {day.day}: {count} request{'s' if count != 1 else ''}",
            }
        )
    return {
        "bars": bars,
        "total": sum(count for _day, count in days),
        "peak": peak,
        "first": days[0][0] if days else None,
        "last": days[-1][0] if days else None,
        "width": WIDTH,
        "height": HEIGHT,
    }
