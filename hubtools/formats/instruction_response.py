"""Alpaca with the reply under ``response``: ``instruction``, ``input``, ``response`` (GPTeacher,
Self-Instruct predictions). Read exactly as Alpaca, so ``input`` joins the prompt (it is not
Dolly, whose ``context`` is the only extra text) and is kept to split again on write."""

from __future__ import annotations

from typing import Any

from .instruction import Alpaca

__all__ = ["AlpacaResponse"]


class AlpacaResponse(Alpaca):
    name = "alpaca_response"
    description = "Alpaca with 'response' for 'output': instruction, input, response (GPTeacher)"
    required = frozenset({"instruction", "input", "response"})
    hints = frozenset({"response", "input"})
    owned = frozenset({"instruction", "input", "response", "system", "history"})

    def accepts(self, record: dict) -> bool:
        return "output" not in record and "context" not in record

    def to_canonical(self, record: dict) -> dict[str, Any]:
        renamed = {k: v for k, v in record.items() if k != "response"}
        renamed["output"] = record["response"]
        return super().to_canonical(renamed)

    def from_canonical(self, record: dict, extra: dict) -> dict[str, Any]:
        out = super().from_canonical(record, extra)
        out["response"] = out.pop("output")
        return out
