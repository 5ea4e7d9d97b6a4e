"""The results: a table on the terminal, a dated markdown section, a plot, raw JSON.

Every ratio compares medians within one scenario: ``x uv`` is a tool's median over uv's
(> 1: slower than uv), ``x pip`` the same against pip. The spread (slowest / fastest round) is
printed beside each median: where it is large, so is the doubt about the ratio.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from .cells import Scenario
from .runner import Series

NA = "n/a: no cache of unpacked wheels"


@dataclass(frozen=True)
class Row:
    scenario: Scenario
    tool: str
    times: tuple[float, ...]  # empty for an n/a row
    x_uv: float | None
    x_pip: float | None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        return max(self.times) / min(self.times) if min(self.times) > 0 else float("inf")


def rows(series: Series, scenarios: list[Scenario]) -> list[Row]:
    out = []
    for sc in scenarios:
        uv = series.median(f"{sc.key}/uv")
        pip = series.median(f"{sc.key}/pip")
        for tool in sc.tools:
            median = series.median(f"{sc.key}/{tool}")
            if median is None:
                continue
            x_uv = median / uv if uv and tool != "uv" and "uv" in sc.tools else None
            x_pip = median / pip if pip and tool != "pip" and "pip" in sc.tools else None
            out.append(Row(sc, tool, tuple(series.times[f"{sc.key}/{tool}"]), x_uv, x_pip))
        out.extend(Row(sc, tool, (), None, None) for tool in sc.na)
    return out


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def text_table(series: Series, scenarios: list[Scenario]) -> str:
    width = max([len(s.title) for s in scenarios] + [8])
    head = f"{'scenario':<{width}}  {'tool':<16} {'median s':>9} {'min s':>8} {'max s':>8}"
    head += f" {'spread':>7} {'x uv':>7} {'x pip':>7}"
    lines = [head, "-" * len(head)]
    last = None
    for row in rows(series, scenarios):
        title = row.scenario.title if row.scenario is not last else ""
        if last is not None and row.scenario is not last:
            lines.append("")
        last = row.scenario
        if not row.times:
            lines.append(f"{title:<{width}}  {row.tool:<16} {NA}")
            continue
        lines.append(
            f"{title:<{width}}  {row.tool:<16} {row.median:9.3f} {min(row.times):8.3f} "
            f"{max(row.times):8.3f} {row.spread:6.2f}x {_ratio(row.x_uv):>7} "
            f"{_ratio(row.x_pip):>7}"
        )
    return "\n".join(lines)


def markdown_table(series: Series, scenarios: list[Scenario]) -> str:
    lines = [
        "| scenario | tool | median | min - max | spread | x uv | x pip |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    last = None
    for row in rows(series, scenarios):
        title = row.scenario.title if row.scenario is not last else ""
        last = row.scenario
        if not row.times:
            lines.append(f"| {title} | {row.tool} | {NA} | | | | |")
            continue
        lines.append(
            f"| {title} | {row.tool} | {row.median:.3f} s | {min(row.times):.3f} - "
            f"{max(row.times):.3f} | {row.spread:.2f}x | {_ratio(row.x_uv)} | "
            f"{_ratio(row.x_pip)} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# docs/benchmarks.md

HEADER = """# Install speed

Each section is one run of `python -m benchmarks.speed --write FILE` (what is measured and how:
`benchmarks/speed/__init__.py`). A run replaces the section of the same day and corpus and
keeps the others; the plot belongs to the latest section written.
"""
PLOT_LINE = re.compile(r"^!\[plot of this run\]\(.*\)\n?", re.MULTILINE)


def markdown_section(
    key: str,
    info: dict[str, str],
    series: list[Series],
    scenarios: list[Scenario],
    plot: Path | None,
) -> str:
    parts = [f"<!-- speed: {key} -->", f"## {info['date']}, corpus: {info['corpus label']}", ""]
    for name in ("corpus", "machine", "tools", "method", "command"):
        parts.append(f"- {name}: {info[name]}")
    parts.append("")
    if plot is not None:
        parts += [f"![plot of this run]({plot.name})", ""]
    for s in series:
        parts += [f"### {s.ws.label}", "", markdown_table(s, scenarios), ""]
    parts.append(f"<!-- /speed: {key} -->")
    return "\n".join(parts) + "\n"


def write_markdown(path: Path, key: str, section: str) -> None:
    """Replace the section marked with *key*, or append it; only the new section keeps the
    plot's image (the plot file is rewritten by every run)."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    text = PLOT_LINE.sub("", text)
    pattern = re.compile(
        rf"<!-- speed: {re.escape(key)} -->\n.*?<!-- /speed: {re.escape(key)} -->\n",
        re.DOTALL,
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# plot

COLOURS = {
    "stalwart": "#1f77b4",
    "uv": "#ff7f0e",
    "pip": "#2ca02c",
    "installer": "#9467bd",
    "cp -al": "#7f7f7f",
    "cp -r": "#bcbd22",
}


def plot(path: Path, series: list[Series], scenarios: list[Scenario], title: str) -> bool:
    """Bars per scenario, tools side by side, log seconds, whiskers from fastest to slowest
    round. False (and nothing written) without matplotlib: it is the optional ``bench`` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(
        len(series), 1, figsize=(12, 4.2 * len(series)), squeeze=False, layout="constrained"
    )
    seen: set[str] = set()
    for ax, s in zip(axes[:, 0], series, strict=True):
        for i, sc in enumerate(scenarios):
            # n/a tools keep their slot, so a tool sits at the same place in every group.
            slots = [*(r for r in rows(s, [sc]) if r.times), *sc.na]
            width = 0.8 / max(len(slots), 1)
            for j, row in enumerate(slots):
                x = i + (j - (len(slots) - 1) / 2) * width
                if isinstance(row, str):
                    ax.annotate(
                        f"{row}: n/a",
                        (x, 0),
                        xycoords=("data", "axes fraction"),
                        xytext=(0, 4),
                        textcoords="offset points",
                        ha="center",
                        va="bottom",
                        rotation=90,
                        fontsize=7,
                        color="#555555",
                    )
                    continue
                med = row.median
                err = [[med - min(row.times)], [max(row.times) - med]]
                label = None if row.tool in seen else row.tool
                seen.add(row.tool)
                ax.bar(x, med, width * 0.9, color=COLOURS.get(row.tool, "#8c564b"), label=label)
                ax.errorbar(x, med, yerr=err, fmt="none", ecolor="black", lw=0.8, capsize=2)
        ax.set_yscale("log")
        ax.set_ylabel("seconds (log)")
        labels = [sc.title.replace(" (", "\n(") for sc in scenarios]
        ax.set_xticks(range(len(scenarios)), labels, fontsize=8)
        ax.set_title(s.ws.label, fontsize=10)
        ax.grid(axis="y", which="both", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=len(seen), fontsize=8)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_json(path: Path, info: dict[str, str], series: list[Series]) -> None:
    data = {
        "info": info,
        "series": [
            {
                "label": s.ws.label,
                "times": s.times,
                "census": {k: dict(zip(("dists", "files", "pyc"), v, strict=True))
                           for k, v in s.census.items()},
            }
            for s in series
        ],
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
