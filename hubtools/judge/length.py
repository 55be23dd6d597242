"""Length control: scores and win rates with the part explained by response length removed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["length_controlled", "length_controlled_win_rate"]


def length_controlled(scores: Sequence[float], lengths: Sequence[int]) -> tuple[list[float], float]:
    """Scores with the linear effect of log length removed, and that effect (points per unit of log chars).

    Fits ``score = a + b * log(1 + chars)`` by least squares and returns
    ``score - b * (log(1 + chars) - mean log(1 + chars))``: the score each response would get at
    the average length. With fewer than 3 distinct lengths, the scores are returned unchanged.

    >>> length_controlled([2, 4, 6], [10, 100, 1000])  # longer answers scored higher: nearly all length
    ([3.989, 4.023, 3.989], 0.8867)
    """
    x = np.log1p(np.asarray(lengths, dtype=float))
    y = np.asarray(scores, dtype=float)
    if len(set(np.round(x, 6))) < 3:
        return [float(v) for v in y], 0.0
    beta = float(np.polyfit(x, y, 1)[0])
    return [round(float(v), 3) for v in y - beta * (x - x.mean())], round(beta, 4)


def length_controlled_win_rate(winners: Sequence[str], len_a: Sequence[int], len_b: Sequence[int]) -> dict[str, Any]:
    """Win rate of ``a`` raw and at equal length.

    A logistic model ``P(a wins) = sigmoid(w0 + w1 * log(len_a / len_b))`` is fitted (ties count
    half a win); the length-controlled win rate is ``sigmoid(w0)``, the chance that ``a`` wins
    when both responses are equally long (the idea of AlpacaEval's length control, simplified).
    """
    y = np.array([{"a": 1.0, "b": 0.0, "tie": 0.5}[w] for w in winners])
    if not len(y):
        return {"n": 0, "win_rate": None, "win_rate_lc": None, "length_coef": None}
    x = np.log((np.asarray(len_a, float) + 1) / (np.asarray(len_b, float) + 1))
    design = np.column_stack([np.ones_like(x), x])
    w = np.zeros(2)
    for _ in range(50):  # Newton steps with a small ridge against separation
        p = 1 / (1 + np.exp(-design @ w))
        grad = design.T @ (y - p) - 1e-3 * w
        hess = design.T @ (design * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w += step
        if np.abs(step).max() < 1e-8:
            break
    return {"n": int(len(y)), "win_rate": round(float(y.mean()), 4),
            "win_rate_lc": round(1 / (1 + math.exp(-w[0])), 4), "length_coef": round(float(w[1]), 4)}
