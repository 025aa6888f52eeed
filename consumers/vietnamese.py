"""Numbers, dates and periods as Vietnamese readers write them.

A Vietnamese reader takes "1,566" and "96.1%" for decimals: thousands are grouped with
dots, decimals follow a comma, and a percent sign is set off by a space (1.566; 96,1 %).
Dates are day/month/year (a document's date line as Decree 30/2020 writes it); periods are
"tháng 3/2026", "quý I/2026", "năm 2026".
"""

from __future__ import annotations

import datetime as dt

QUARTERS = ("I", "II", "III", "IV")


def number(value: float, decimals: int = 0) -> str:
    """1566 → "1.566"; 12.25 with one decimal → "12,3"."""
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".")


def percent(ratio: float | None, decimals: int = 1) -> str:
    """0.961 → "96,1 %" (a no-break space before the sign); None (no denominator) → "–"."""
    return "–" if ratio is None else f"{number(100 * ratio, decimals)}\u00a0%"


def date(day: dt.date) -> str:
    return f"{day:%d/%m/%Y}"


def document_date(day: dt.date) -> str:
    """The date of an administrative document's place-and-date line (Decree 30/2020,
    Appendix I: "Đối với những số chỉ ngày nhỏ hơn 10 và tháng 1, 2 phải ghi thêm số 0 ở
    trước"): "ngày 05 tháng 3 năm 2026", "ngày 15 tháng 01 năm 2026". The zero leaves no
    room to add a digit ("tháng 1" into "tháng 11"); months from 3 on cannot be made into
    another month that way, so they are written without it."""
    month = f"{day.month:02d}" if day.month <= 2 else str(day.month)
    return f"ngày {day.day:02d} tháng {month} năm {day.year}"


def _period_kind(first: dt.date, last: dt.date) -> str | None:
    """A whole month, quarter or year; None for any other span."""
    if first.day != 1 or (last + dt.timedelta(days=1)).day != 1:
        return None  # not whole months
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    if months == 1:
        return "month"
    if months == 3 and first.month % 3 == 1:
        return "quarter"
    if months == 12 and first.month == 1:
        return "year"
    return None


def period_name(first: dt.date, last: dt.date) -> str:
    """A month, a quarter or a year as the report's title names it."""
    kind = _period_kind(first, last)
    if kind == "month":
        return f"tháng {first.month}/{first.year}"
    if kind == "quarter":
        return f"quý {QUARTERS[first.month // 3]}/{first.year}"
    if kind == "year":
        return f"năm {first.year}"
    return f"từ {date(first)} đến {date(last)}"


def period_name_en(first: dt.date, last: dt.date) -> str:
    kind = _period_kind(first, last)
    if kind == "month":
        return f"{first:%B %Y}"
    if kind == "quarter":
        return f"Q{first.month // 3 + 1} {first.year}"
    if kind == "year":
        return str(first.year)
    return f"{first:%d/%m/%Y} to {last:%d/%m/%Y}"
