"""Durations and sizes in the words xyOps puts into job messages.

Limit and stale-job descriptions are read by people and matched by scripts, so they use the
exact shapes xyOps prints: "2 minutes", "1 hour, 30 minutes", "512 bytes", "1.5 K", "2 MB".
"""

from __future__ import annotations

_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def seconds_text(seconds: float, secondary: bool = True) -> str:
    """Largest whole unit, plus the next smaller unit when non-zero (and `secondary`)."""
    total = int(abs(seconds))
    sign = "-" if seconds < 0 else ""
    for index, (name, size) in enumerate(_UNITS):
        if total >= size or size == 1:
            amount, rest = divmod(total, size)
            text = _plural(amount, name)
            if secondary and index + 1 < len(_UNITS):
                sub_name, sub_size = _UNITS[index + 1]
                sub = rest // sub_size
                if sub:
                    text += ", " + _plural(sub, sub_name)
            return sign + text
    return sign + "0 seconds"


def bytes_text(size: float) -> str:
    """Bytes under 1 KiB, else K/MB/GB/TB floored to one decimal place."""
    value = float(int(size))
    if value < 1024:
        return _plural(int(value), "byte")
    for unit in ("K", "MB", "GB", "TB"):
        value = int(value / 1024 * 10) / 10
        if value < 1024 or unit == "TB":
            return f"{_number(value)} {unit}"
    return f"{_number(value)} TB"


def _plural(amount: int, word: str) -> str:
    return f"{amount} {word}" + ("" if amount == 1 else "s")


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)
