"""Per-stage accounting: what each stage received, kept, dropped (by reason) and produced.

Every row holds ``records_in == kept + sum(dropped)`` in the stage's input unit, and the next
stage's ``records_in`` is this stage's ``records_out`` (plus a joining source's, such as a prompt
list read beside written instructions) (a stage may make several records from one:
two candidates per prompt, a pair from two candidates). :func:`accounting_problems` says where
either rule breaks; the build refuses to publish a table that does not add up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["StageRow", "accounting_problems", "accounting_table"]


@dataclass
class StageRow:
    """One stage's figures."""

    stage: str
    unit_in: str
    records_in: int
    kept: int
    unit_out: str
    records_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    tokens: int = 0
    cost_usd: float | None = None
    #: done in an earlier run (its manifest matched)
    reused: bool = False
    #: a source read beside the stream: its records join the previous step's for the next step
    joins: bool = False
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageRow:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def accounting_problems(rows: list[StageRow]) -> list[str]:
    """Where the figures do not add up (empty: they do)."""
    problems = []
    flow: int | None = None  # what the next step should receive
    givers: list[str] = []
    for row in rows:
        if row.records_in != row.kept + sum(row.dropped.values()):
            problems.append(f"{row.stage}: {row.records_in} in != {row.kept} kept + "
                            f"{sum(row.dropped.values())} dropped")
        if row.joins:
            flow, givers = (flow or 0) + row.records_out, [*givers, row.stage]
            continue
        if flow is not None and flow != row.records_in:
            problems.append(f"{row.stage}: {row.records_in} in, but {' + '.join(givers)} gave {flow}")
        flow, givers = row.records_out, [row.stage]
    return problems


def _dropped(row: StageRow) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in sorted(row.dropped.items(), key=lambda kv: -kv[1])
                     if n) or "none"


def accounting_table(rows: list[StageRow]) -> str:
    """The rows as a markdown table (the run report's and the dataset card's)."""
    lines = ["| stage | in | kept | dropped (by reason) | out | time | tokens | cost |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        cost = f"${row.cost_usd:,.4f}" if row.cost_usd is not None else "—"
        when = f"{row.seconds:,.1f} s" + (" (earlier run)" if row.reused else "")
        lines.append(f"| {row.stage} | {row.records_in:,} {row.unit_in} | {row.kept:,} | {_dropped(row)} | "
                     f"{row.records_out:,} {row.unit_out} | {when} | {row.tokens:,} | {cost} |")
    return "\n".join(lines)
