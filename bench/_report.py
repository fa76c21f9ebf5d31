"""Tables for the terminal and for Markdown: medians, ratios to the best peer, goals.

"x best peer" is workerbridge's (or any contender's) median divided by the best median among
the peers (every contender but workerbridge and its configurations) for the same metric: below
1 is faster for times, above 1 is faster for rates. The best peer's own row shows 1.00. An
outcome in words (``broken``, ``hangs``, ``n/a``) is shown as is and has no ratio; a goal
whose contender ended in such an outcome is not met.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ._machine import Limit
from ._peers import START_METHODS, SUBJECT, is_subject
from ._runner import Outcome
from ._workloads import Goal, Metric, Workload

__all__ = [
    "SUBJECT",
    "GoalResult",
    "Section",
    "Table",
    "build_section",
    "render_markdown",
    "render_text",
]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align: str = ""  # one letter per column, "l" or "r"; default: two text columns, then numbers

    def _left(self, i: int) -> bool:
        return self.align[i] == "l" if self.align else i < 2

    def text(self, indent: str = "  ") -> str:
        """Aligned columns; text columns left, numbers right."""
        widths = [
            max(len(h), *(len(r[i]) for r in self.rows)) if self.rows else len(h)
            for i, h in enumerate(self.headers)
        ]

        def line(cells: Sequence[str]) -> str:
            parts = [
                c.ljust(w) if self._left(i) else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ]
            return indent + "  ".join(parts).rstrip()

        rule = indent + "  ".join("-" * w for w in widths)
        return "\n".join([line(self.headers), rule, *(line(r) for r in self.rows)])

    def markdown(self) -> str:
        align = ["---" if self._left(i) else "---:" for i in range(len(self.headers))]
        rows = [self.headers, align, *self.rows]
        return "\n".join("| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in rows)


@dataclass
class GoalResult:
    workload: str
    goal: Goal
    label: str
    value: float | None  # the ratio (or the absolute value) for workerbridge
    detail: str
    inconclusive: bool = False  # the best peer stayed below the goal's peer_floor
    word: str | None = None  # workerbridge gave an outcome in words ("hangs"), not a number
    digits: int = 2  # for an absolute value (a ratio always shows 2)

    @property
    def shown(self) -> str:
        if self.word is not None:
            return self.word
        if self.value is None:
            return "n/a"
        if self.goal.against is None:
            return f"{self.value:.{max(2, self.digits)}f}"
        return f"{self.value:.2f}x"

    @property
    def verdict(self) -> str:
        if self.word is not None:
            return "NOT met"
        if self.value is None:
            return "n/a"
        if self.inconclusive:
            return "inconclusive"
        return "met" if self.goal.met(self.value) else "NOT met"

    def sentence(self) -> str:
        own = f"{self.goal.contender} {self.shown} {self.detail}".rstrip()
        return f"goal {self.label} {self.goal.text}: {own} -> {self.verdict}"


@dataclass
class Section:
    workload: Workload
    params: dict[str, Any]
    table: Table
    goals: list[GoalResult]
    notes: list[str] = field(default_factory=list)
    shm_left: list[str] = field(default_factory=list)  # segments any contender left behind


def fmt(value: float | None, metric: Metric) -> str:
    if value is None:
        return "-"
    if metric.digits == 0 and value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if metric.digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{metric.digits}f}"


def _best(values: dict[str, float], metric: Metric) -> tuple[str, float] | None:
    if not values:
        return None
    pick = max if metric.higher_is_better else min
    name = pick(values, key=values.__getitem__)
    return name, values[name]


def build_section(
    workload: Workload, params: dict[str, Any], outcomes: dict[str, Outcome]
) -> Section:
    names = list(outcomes)
    medians = {m.key: {n: outcomes[n].median(m.key) for n in names} for m in workload.metrics}
    best_peer: dict[str, tuple[str, float] | None] = {}
    for m in workload.metrics:
        peers = {n: v for n, v in medians[m.key].items() if not is_subject(n) and v is not None}
        best_peer[m.key] = _best(peers, m)
    first = workload.metrics[0]
    ratio_metrics = [m for m in workload.metrics if m.ratio and not m.words]

    def sort_key(name: str) -> tuple[int, float]:
        value = medians[first.key][name]
        if is_subject(name):
            return (0, float(names.index(name)))
        if value is None:
            return (2, 0.0)
        return (1, -value if first.higher_is_better else value)

    headers = ["contender", "start method"]
    headers += [m.label for m in workload.metrics]
    headers += [
        "x best peer" if len(ratio_metrics) == 1 else f"{m.label.split()[0]} x best peer"
        for m in ratio_metrics
    ]
    headers += ["spread", "runs"]
    align = "ll" + "".join("l" if m.words else "r" for m in workload.metrics)
    align += "r" * (len(ratio_metrics) + 2)
    rows: list[list[str]] = []
    notes: list[str] = []
    for name in sorted(names, key=sort_key):
        outcome = outcomes[name]
        row = [name, START_METHODS.get(name, "-")]
        failure = outcome.failure
        if failure is not None:
            row += ["failed"] + ["-"] * (len(workload.metrics) - 1 + len(ratio_metrics) + 1)
            notes.append(f"{name} failed: {failure}")
        else:
            row += [outcome.word(m.key) or fmt(medians[m.key][name], m) for m in workload.metrics]
            for m in ratio_metrics:
                value, best = medians[m.key][name], best_peer[m.key]
                cell = "-" if value is None or best is None else f"{value / best[1]:.2f}"
                if best is not None and best[0] == name:
                    cell += " (best)"
                row.append(cell)
            values = outcome.values(first.key)
            mid = medians[first.key][name]
            if values and mid:
                row.append(f"±{(max(values) - min(values)) / 2 / mid * 100:.0f}%")
            else:
                row.append("-")
        ok_runs = sum(run.ok for run in outcome.runs)
        row.append(str(ok_runs) if failure is None else f"{ok_runs}/{len(outcome.runs)}")
        if outcome.leaked:
            notes.append(f"{name}: {outcome.leaked} process(es) left behind after close, killed")
        if outcome.shm_left:
            left = outcome.shm_left
            shown = ", ".join(left[:3]) + (", ..." if len(left) > 3 else "")
            notes.append(
                f"{name}: {len(left)} shared-memory segment(s) left in /dev/shm after its "
                f"processes ended ({shown}); removed by the benchmark"
            )
        rows.append(row)

    goals = []
    by_key = {m.key: m for m in workload.metrics}
    for goal in workload.goals:
        if goal.contender != SUBJECT and goal.contender not in outcomes:
            continue  # a configuration that was not run
        metric = by_key[goal.metric]
        own = medians[goal.metric].get(goal.contender)
        subject = outcomes.get(goal.contender)
        word = None if subject is None else subject.word(goal.metric)
        label = metric.label
        if word is not None:
            goals.append(GoalResult(workload.name, goal, label, None, "", word=word))
            continue
        if goal.against is None:
            best = best_peer[goal.metric]
            detail, inconclusive = "", False
            if best is not None:
                detail = f"(best peer {best[0]} {fmt(best[1], metric)})"
            if goal.peer_floor is not None and best is not None:
                inconclusive = best[1] < goal.peer_floor
                if inconclusive:
                    notes.append(
                        f"no peer reached {goal.peer_floor:g} for {label}: the machine could "
                        "not give this run what the goal needs (a free second core), so the "
                        "goal is not judged"
                    )
            goals.append(
                GoalResult(
                    workload.name, goal, label, own, detail, inconclusive, digits=metric.digits
                )
            )
            continue
        if goal.against == "best peer":
            ref = best_peer[goal.metric]
        else:
            other = medians[goal.metric].get(goal.against)
            ref = None if other is None else (goal.against, other)
        if ref is None:
            goals.append(GoalResult(workload.name, goal, label, None, "(no reference)"))
            continue
        ratio = None if own is None else own / ref[1]
        detail = f"({fmt(own, metric)} vs {ref[0]} {fmt(ref[1], metric)})"
        goals.append(GoalResult(workload.name, goal, label, ratio, detail))
    shm_left = [n for name in names for n in outcomes[name].shm_left]
    return Section(workload, params, Table(headers, rows, align), goals, notes, shm_left)


def render_text(section: Section) -> str:
    w = section.workload
    lines = [f"== {w.title} ({w.name})", f"   {w.describe(section.params)}", section.table.text()]
    lines += [f"   note: {n}" for n in (*w.notes, *section.notes)]
    lines += [f"   {g.sentence()}" for g in section.goals]
    if w.reference:
        lines.append(f"   before workerbridge (DESIGN §7): {w.reference}")
    return "\n".join(lines)


def limits_table(limits: list[Limit]) -> Table:
    rows = [[lim.name, lim.note, f"{lim.value:,.2f} {lim.unit}"] for lim in limits]
    return Table(["limit", "how", "value"], rows)


def goals_table(sections: list[Section]) -> Table:
    rows = [
        [s.workload.title, f"{g.label} {g.goal.text}", g.verdict, g.shown, g.detail]
        for s in sections
        for g in s.goals
    ]
    return Table(["workload", "goal", "verdict", SUBJECT, "measured"], rows, align="lllrl")


def render_markdown(
    *,
    title_facts: dict[str, str],
    machine: dict[str, str],
    limits: list[Limit],
    sections: list[Section],
    method: list[str],
) -> str:
    out = ["# workerbridge benchmarks", ""]
    out += [f"- {k}: {v}" for k, v in title_facts.items()]
    out += ["", "## Machine", ""]
    out += [f"- {k}: {v}" for k, v in machine.items()]
    if limits:
        out += ["", "Physical limits, for scale:", "", limits_table(limits).markdown()]
    if sections:
        out += ["", "## Goals", "", goals_table(sections).markdown()]
        out += ["", "## Results"]
    for s in sections:
        w = s.workload
        out += ["", f"### {w.title}", "", w.describe(s.params) + ".", "", s.table.markdown(), ""]
        out += [f"- note: {n}" for n in (*w.notes, *s.notes)]
        out += [f"- {g.sentence()}" for g in s.goals]
        if w.reference:
            out.append(f"- before workerbridge (DESIGN §7): {w.reference}")
    out += ["", "## Method", ""]
    out += [f"- {line}" for line in method]
    return "\n".join(out) + "\n"
