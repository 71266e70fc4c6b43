"""The Usage page's SVG charts: valid XML, one bar per point, escaped data, an empty state, responsive."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from cachebash.interface import charts

NS = {"svg": "http://www.w3.org/2000/svg"}
HOSTILE = '<script>alert("x")</script> & \'co\'\x00\x07'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "bar"]


def tooltips(root: ET.Element) -> list[str]:
    return [g.findtext("svg:title", namespaces=NS) or "" for g in bars(root)]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]


def assert_responsive_and_accessible(svg: str, root: ET.Element) -> None:
    assert re.fullmatch(r"0 0 \d+(\.\d+)? \d+(\.\d+)?", root.get("viewBox", ""))
    assert root.get("width") == "100%" and root.get("height") is None
    assert not re.search(r'\bwidth="\d+(\.\d+)?px"|\bheight="\d+(\.\d+)?px"|\d px', svg), "no fixed pixel sizes"
    assert root.get("role") == "img" and root.get("aria-label")
    assert "<script" not in svg and "href" not in svg, "self-contained: no script, no external stylesheet"


DAYS = [(f"Dec {day}", day * 0.01) for day in range(1, 31)]


def test_bar_chart_has_one_bar_per_point_and_thins_its_ticks() -> None:
    svg = charts.bar_chart("Cost by day", DAYS, unit="USD", money=True)
    root = parse(svg)
    assert_responsive_and_accessible(svg, root)
    assert len(bars(root)) == 30
    assert tooltips(root)[0] == "Dec 1: $0.01" and tooltips(root)[-1] == "Dec 30: $0.30"
    day_ticks = [t for t in texts(root) if t.startswith("Dec ")]
    assert 3 <= len(day_ticks) <= 8 and day_ticks[0] == "Dec 1", "every Nth day is labelled, so 30 fit a phone"
    assert "USD" in texts(root) and "$0" in texts(root), "the y axis is labelled with values and the unit"
    heights = [float(g.find("svg:rect[@class='seg']", NS).get("height", 0)) for g in bars(root)]  # type: ignore[union-attr]
    assert heights == sorted(heights) and heights[0] > 0, "bars grow with their values"


def test_stacked_bars_stack_each_series_with_a_legend() -> None:
    labels = ["Dec 1", "Dec 2", "Dec 3"]
    svg = charts.stacked_bars("Tasks by day", labels, [("Completed", [3, 0, 1]), ("Failed", [1, 0, 0])],
                              unit="tasks")
    root = parse(svg)
    assert_responsive_and_accessible(svg, root)
    assert len(bars(root)) == 3
    segments = [len([r for r in g.iter("{http://www.w3.org/2000/svg}rect") if r.get("class") == "seg"])
                for g in bars(root)]
    assert segments == [2, 0, 1], "zero parts draw nothing"
    assert tooltips(root)[0] == "Dec 1: Completed 3, Failed 1"
    assert {"Completed", "Failed"} <= set(texts(root))
    assert not any("." in t for t in texts(root) if t[:1].isdigit()), "counts get whole-number gridlines"


def test_stacked_bars_refuse_ragged_series() -> None:
    with pytest.raises(ValueError):
        charts.stacked_bars("x", ["a", "b"], [("s", [1.0])])


def test_hbar_chart_has_one_row_per_point_and_its_value() -> None:
    points = [("builder", 1.5), ("reviewer", 0.25), ("a-program-with-a-very-long-name", 0.004)]
    svg = charts.hbar_chart("Cost by program", points, money=True)
    root = parse(svg)
    assert_responsive_and_accessible(svg, root)
    assert len(bars(root)) == 3
    assert tooltips(root) == ["builder: $1.50", "reviewer: $0.25", "a-program-with-a-very-long-name: $0.0040"]
    assert "a-program-with-a-…" in texts(root), "long names are clipped on the bar, whole in the tooltip"


@pytest.mark.parametrize("draw", [
    lambda name: charts.bar_chart(name, [(name, 1.0)], unit=name),
    lambda name: charts.stacked_bars(name, [name], [(name, [1.0]), ("other", [2.0])]),
    lambda name: charts.hbar_chart(name, [(name, 1.0)], money=True),
    lambda name: charts.bar_chart(name, []),
])
def test_data_is_escaped(draw: Any) -> None:
    svg = draw(HOSTILE)
    root = parse(svg)
    assert "<script>" not in svg and "\x00" not in svg
    assert root.get("aria-label", "").startswith('<script>alert("x")</script> & \'co\'')
    assert not list(root.iter("{http://www.w3.org/2000/svg}script"))


@pytest.mark.parametrize("svg", [
    charts.bar_chart("Cost by day", []),
    charts.bar_chart("Cost by day", [("Dec 1", 0.0), ("Dec 2", 0.0)], money=True),
    charts.stacked_bars("Tasks by day", [], []),
    charts.stacked_bars("Tasks by day", ["Dec 1"], [("Completed", [0.0]), ("Failed", [0.0])]),
    charts.hbar_chart("Cost by model", []),
    charts.hbar_chart("Cost by model", [("m", float("nan")), ("n", -1.0)]),
])
def test_no_data_says_so(svg: str) -> None:
    root = parse(svg)
    assert_responsive_and_accessible(svg, root)
    assert "No data yet" in texts(root) and bars(root) == []


def summary() -> dict[str, Any]:
    days = [{"day": f"2026-12-{d:02d}", "tokensIn": 100 * d, "tokensOut": 10 * d, "costUsd": 0.01 * d,
             "completed": d % 3, "failed": d % 2} for d in range(1, 31)]
    programs = [{"key": f"p{i}", "tokensIn": 1, "tokensOut": 1, "costUsd": 1.0 / i, "tasks": 1} for i in range(1, 15)]
    models = [{"key": "m-large", "costUsd": 2.0}, {"key": "unknown", "costUsd": 0.5}]
    return {"days": days, "byProgram": programs, "byModel": models, "byProvider": []}


def test_usage_charts_draw_the_usage_page() -> None:
    drawn = charts.usage_charts(summary())
    assert set(drawn) == {"costByDay", "tokensByDay", "tasksByDay", "costByProgram", "costByModel"}
    roots = {name: parse(svg) for name, svg in drawn.items()}
    for name in ("costByDay", "tokensByDay", "tasksByDay"):
        assert len(bars(roots[name])) == 30
    assert tooltips(roots["costByDay"])[0] == "Dec 1: $0.01"
    assert tooltips(roots["tokensByDay"])[-1] == "Dec 30: Input 3,000, Output 300"
    program_rows = tooltips(roots["costByProgram"])
    assert len(program_rows) == 10 and program_rows[0] == "p1: $1.00"
    assert program_rows[-1] == f"5 others: {charts.dollars(sum(1.0 / i for i in range(10, 15)))}", "the tail folds"
    assert tooltips(roots["costByModel"]) == ["m-large: $2.00", "unknown: $0.50"]


def test_usage_charts_of_a_quiet_tenant_say_no_data_yet() -> None:
    quiet = {"days": [{"day": "2026-12-01", "tokensIn": 0, "tokensOut": 0, "costUsd": 0.0, "completed": 0,
                       "failed": 0}], "byProgram": [], "byModel": []}
    for svg in charts.usage_charts(quiet).values():
        assert "No data yet" in texts(parse(svg))
