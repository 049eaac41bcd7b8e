"""The server-drawn SVG charts: bar heights in proportion, a nice axis, escaped labels."""

from __future__ import annotations

import re

from serverroom.dashboard.charts import HEIGHT, Series, _nice_max, stacked_bars


def test_axis_tops_are_one_two_or_five_times_a_power_of_ten() -> None:
    assert [_nice_max(v) for v in (0, 0.3, 1, 1.5, 3, 7, 12, 480, 0.0042)] == [
        1.0,
        0.5,
        1.0,
        2.0,
        5.0,
        10.0,
        20.0,
        500.0,
        0.005,
    ]


def test_stacked_bars_are_in_proportion_and_escaped() -> None:
    svg = stacked_bars(
        ["d1", "d2"],
        [Series("<a>", [10, 0]), Series("b", [10, 5])],
        lambda v: f"{v:.0f}",
        "t",
    )
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([0-9.]+)"', svg)]
    assert len(heights) == 3  # an empty segment draws nothing
    assert heights[0] == heights[1] == 2 * heights[2]
    assert "&lt;a&gt;" in svg and "<a>" not in svg
    assert heights[0] + heights[1] <= HEIGHT  # the axis (20) holds the tallest bar (20)
