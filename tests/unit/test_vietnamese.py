"""Numbers, dates and periods as Vietnamese readers write them (consumers/vietnamese.py)."""

import datetime as dt

from onestop.consumers.vietnamese import date, document_date, number, percent, period_name


def test_numbers_group_thousands_with_dots_and_decimals_with_commas() -> None:
    assert number(1566) == "1.566"
    assert number(1234567.891, 2) == "1.234.567,89"
    assert number(12.34, 1) == "12,3"
    assert percent(0.961) == "96,1\u00a0%" and percent(1.0) == "100,0\u00a0%"
    assert percent(None) == "–"


def test_dates_and_periods() -> None:
    assert date(dt.date(2026, 3, 2)) == "02/03/2026"
    assert period_name(dt.date(2026, 3, 1), dt.date(2026, 3, 31)) == "tháng 3/2026"
    assert period_name(dt.date(2026, 1, 1), dt.date(2026, 3, 31)) == "quý I/2026"
    assert period_name(dt.date(2026, 10, 1), dt.date(2026, 12, 31)) == "quý IV/2026"
    assert period_name(dt.date(2026, 1, 1), dt.date(2026, 12, 31)) == "năm 2026"
    assert period_name(dt.date(2026, 3, 5), dt.date(2026, 3, 9)) == "từ 05/03/2026 đến 09/03/2026"


def test_the_date_line_of_a_document_follows_decree_30() -> None:
    """Decree 30/2020, Appendix I: a zero before days below 10 and months 1 and 2 only."""
    assert document_date(dt.date(2026, 3, 5)) == "ngày 05 tháng 3 năm 2026"
    assert document_date(dt.date(2026, 1, 15)) == "ngày 15 tháng 01 năm 2026"
    assert document_date(dt.date(2026, 2, 20)) == "ngày 20 tháng 02 năm 2026"
    assert document_date(dt.date(2026, 12, 10)) == "ngày 10 tháng 12 năm 2026"
    assert document_date(dt.date(2026, 4, 20)) == "ngày 20 tháng 4 năm 2026"
