"""``schema``: the records validation quarantined, by code, so the quality report shows them."""

from __future__ import annotations

from collections import Counter

import orjson

from .base import CheckData, CheckResult, register

_SHOW = 300


def _short(raw) -> str:
    text = raw if isinstance(raw, str) else orjson.dumps(raw, option=orjson.OPT_NON_STR_KEYS).decode(errors="replace")
    return text if len(text) <= _SHOW else text[: _SHOW - 1] + "…"


@register("schema", description="records that failed schema validation (quarantined on read)",
          needs_records=False)
def check_schema(data: CheckData, options) -> CheckResult:
    rows = data.quarantine
    by_code = Counter(row.code for row in rows)
    return CheckResult(
        "schema",
        flagged=[row.index for row in rows if row.index is not None],
        reasons={row.index: f"{row.code}: {row.reason}" for row in rows if row.index is not None},
        stats={"quarantined": len(rows), "valid": len(data), "by_code": dict(by_code.most_common())},
        examples=[{"index": row.index, "reason": f"{row.code}: {row.reason}", "fields": {"raw": _short(row.raw)}}
                  for row in rows[:3]],
    )
