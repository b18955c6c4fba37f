"""How indicators state a figure: the value with its numerator and denominator."""

from __future__ import annotations

from typing import Any


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    value = round(numerator / denominator, 6) if denominator else None
    return {"value": value, "numerator": numerator, "denominator": denominator}


def per_mille(numerator: int, denominator: int) -> dict[str, Any]:
    value = round(1000 * numerator / denominator, 4) if denominator else None
    return {"value": value, "numerator": numerator, "denominator": denominator}
