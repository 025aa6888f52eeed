"""A synthetic province: realistic, seeded case and queue events (event contract v1).

`simulate(reference, settings)` yields the events of `settings.cases` cases received over
`settings.days` days from `settings.start`, and the queue tickets of every one-stop centre
on every working day, as JSON-ready dicts in delivery order: roughly increasing event time,
with a share of case events delivered before an earlier event of the same case and a share
of events delivered twice. Everything is drawn from one `random.Random(settings.seed)`, and
nothing reads the wall clock, so the same settings always give the same stream.

How a case is drawn (all instants are whole POSIX seconds):

- a procedure (commune civil status and certification often, land and construction
  rarely), the handling agency that level allows, the centre that receives for it, a
  channel (counter 55 %, online 38 %, postal 7 %), a receipt instant (counter and postal on
  working days in working hours, with a morning and an afternoon peak and a busy Monday;
  online at any hour of any day, more in the evening);
- a plan in *active working time* since acceptance: hand-offs along the procedure's
  internal process (or centre → agency → maybe the People's Committee → centre), pauses for
  supplements, and an end that is before the due instant for most cases and after it for
  about `late_rate` of them. Active time is mapped to instants by adding working seconds
  and skipping the pauses, which is exactly how the rules extend a due date by a pause.
- what happens around it: payment, apology letters for late cases, the result handed
  over and rated. Events after the end of the window are not emitted: cases received near
  the end are still open.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import unicodedata
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from random import Random
from typing import Any

import orjson

from onestop.models.calendar import WorkingCalendar
from onestop.models.case import CaseRules, move_due
from onestop.models.reference import Agency, Procedure, Reference


@dataclass(frozen=True)
class SimulationSettings:
    cases: int = 5000
    seed: int = 1
    start: dt.date = dt.date(2026, 3, 2)
    days: int = 30
    disorder_rate: float = 0.02  # share of case events delivered before an earlier one of the case
    duplicate_rate: float = 0.01  # share of events delivered twice (same event_id, same content)
    late_rate: float = 0.08  # rough share of cases that end (or stay) past their due instant
    tickets_per_centre_day: int = 0  # 0 = about one ticket per counter case, plus other visits


# ---- Vietnamese texts (fictional people) -------------------------------------------------

_FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
           "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Trương", "Đinh", "Lâm", "Mai")
_MIDDLE = ("Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Ngọc", "Quốc", "Thu", "Hoài",
           "Kim", "Xuân", "Gia", "Bảo", "Thùy")
_GIVEN = ("An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng",
          "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Nga", "Phúc", "Phương",
          "Quân", "Sơn", "Tâm", "Thảo", "Trang", "Trung", "Tuấn", "Vy", "Yến", "Đạt", "Khoa")
_STREETS = ("Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Hùng Vương", "Quang Trung",
            "Điện Biên Phủ", "Nguyễn Trãi", "Lý Thường Kiệt", "Hai Bà Trưng", "30 Tháng 4",
            "Phan Đình Phùng", "Ấp Bắc", "Nam Kỳ Khởi Nghĩa")
_PHONE_PREFIXES = ("090", "091", "093", "094", "096", "097", "098", "086", "032", "035",
                   "038", "070", "077", "081", "085")
_MAIL_DOMAINS = ("example.vn", "example.com", "mail.example.vn")

_SUPPLEMENT_REASONS = (
    "Thiếu bản sao giấy khai sinh",
    "Thiếu giấy tờ chứng minh nơi cư trú",
    "Đơn đề nghị chưa có chữ ký của người yêu cầu",
    "Thông tin trong tờ khai không khớp với giấy tờ tùy thân",
    "Thiếu bản sao có chứng thực Giấy chứng nhận quyền sử dụng đất",
    "Bản vẽ thiết kế chưa đúng tỷ lệ theo quy định",
    "Cần bổ sung trích lục bản đồ địa chính thửa đất",
    "Thiếu văn bản ủy quyền hợp lệ",
    "Ảnh chụp giấy tờ không rõ, đề nghị nộp lại bản scan",
)
_APOLOGY_REASONS = (
    "Hồ sơ phức tạp, cần xác minh thêm thông tin",
    "Chờ ý kiến phối hợp của cơ quan có liên quan",
    "Cần kiểm tra, thẩm định thực địa",
    "Cán bộ thụ lý nghỉ ốm đột xuất, chậm luân chuyển hồ sơ",
    "Hệ thống phần mềm một cửa điện tử gặp sự cố",
    "Số lượng hồ sơ tiếp nhận tăng đột biến",
    "Chờ kết quả xác minh nghĩa vụ tài chính",
)
_REFUSAL_REASONS = (
    "Hồ sơ không đủ điều kiện giải quyết theo quy định",
    "Thửa đất đang có tranh chấp, chưa đủ điều kiện cấp giấy",
    "Người yêu cầu không có quyền yêu cầu cấp bản sao",
    "Công trình không phù hợp với quy hoạch được duyệt",
    "Giấy tờ cung cấp không hợp lệ",
)
_RECEPTION_REFUSAL_REASONS = (
    "Thủ tục không thuộc thẩm quyền giải quyết của cơ quan",
    "Thành phần hồ sơ không đúng theo quy định",
    "Hồ sơ đã nộp trùng trên hệ thống",
)
_STOP_REASONS = (
    "Người yêu cầu đề nghị dừng giải quyết",
    "Cơ quan có thẩm quyền đề nghị tạm dừng để thanh tra, kiểm tra",
    "Người yêu cầu đã chết, chưa xác định người thừa kế",
)

# Fee of a fee-bearing procedure, fixed per procedure code (not per case).
_FEES = (20_000, 25_000, 30_000, 50_000, 50_000, 100_000, 100_000, 150_000, 200_000,
         300_000, 500_000)

# Hour-of-day weights: counter visits peak 8–10 h and 14–15 h; online more in the evening.
_COUNTER_HOURS = {7: 1.6, 8: 3.0, 9: 3.0, 10: 2.2, 11: 1.2, 12: 0.6, 13: 1.2, 14: 2.2,
                  15: 1.9, 16: 1.0, 17: 0.4}
_ONLINE_HOURS = (0.25, 0.15, 0.1, 0.1, 0.15, 0.3, 0.6, 0.9, 1.1, 1.2, 1.2, 1.0, 0.8, 0.9,
                 1.1, 1.1, 1.0, 0.9, 1.1, 1.5, 1.8, 1.8, 1.3, 0.6)
# Monday busiest; a make-up Saturday is quieter.
_WEEKDAY_WEIGHTS = (1.35, 1.1, 1.0, 1.0, 0.9, 0.7, 0.5)

_MINUTE = 60
_HOUR = 3600
# Queue waits: lognormal, median 8 minutes, ~87 % within the 15-minute target.
_WAIT_MEDIAN_LOG = math.log(8 * _MINUTE)
_WAIT_SIGMA = 0.48


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in folded if not unicodedata.combining(c)).lower()


_GIVEN_ASCII = tuple(_ascii(name) for name in _GIVEN)
_FAMILY_ASCII = tuple(_ascii(name) for name in _FAMILY)


# ---- the province ------------------------------------------------------------------------


def _is_centre_like(agency: Agency) -> bool:
    name = agency.name.lower()
    return "một cửa" in name or "phục vụ hành chính" in name or "trung tâm hành chính" in name


def _is_peoples_committee(agency: Agency) -> bool:
    name = agency.name.lower()
    return (
        agency.code.upper().endswith("UBND")
        or name.startswith("ủy ban nhân dân")
        or name.startswith("uỷ ban nhân dân")
        or name.startswith("ubnd")
    )


_FREQUENT_FIELDS = ("hộ tịch", "civil", "chứng thực", "certif", "cư trú", "residence",
                   "lý lịch")
_RARE_FIELDS = ("đất", "land", "xây dựng", "construction", "môi trường", "environment",
                "đầu tư", "invest", "khiếu nại", "complaint", "khám bệnh", "phi chính phủ")

# Which unit handles a field: (words of the field, words of the unit's name), both folded
# to ASCII. Tried after a plain "the field's name is in the unit's name" match.
_FIELD_UNITS = (
    ("ho tich", "tu phap"), ("chung thuc", "tu phap"), ("ly lich tu phap", "tu phap"),
    ("dat dai", "nong nghiep va moi truong"), ("dat dai", "tai nguyen"),
    ("dat dai", "kinh te"), ("xay dung", "xay dung"), ("xay dung", "kinh te"),
    ("ho kinh doanh", "kinh te"), ("dang ky kinh doanh", "tai chinh"),
    ("dang ky kinh doanh", "ke hoach"), ("luu thong hang hoa", "cong thuong"),
    ("thuong mai", "cong thuong"), ("an toan thuc pham", "y te"), ("kham benh", "y te"),
    ("duoc", "y te"), ("giao duc", "giao duc"), ("to chuc phi chinh phu", "noi vu"),
    ("van hoa", "van hoa"), ("an ninh", "cong an"),
)


def _procedure_weight(procedure: Procedure) -> float:
    field = procedure.field.lower()
    frequent = any(word in field for word in _FREQUENT_FIELDS)
    rare = any(word in field for word in _RARE_FIELDS)
    if procedure.level == "commune":
        return 12.0 if frequent else (0.6 if rare else 4.0)
    if procedure.level == "district":
        return 4.0 if frequent else (1.2 if rare else 2.5)
    return 4.0 if frequent else (1.0 if rare else 2.0)


def _unit_for_field(field: str, candidates: list[str], agencies: dict[str, Agency]) -> str | None:
    folded = _ascii(field)
    if not folded:
        return None
    for code in candidates:
        if folded in _ascii(agencies[code].name):
            return code
    for field_words, unit_words in _FIELD_UNITS:
        if field_words in folded:
            for code in candidates:
                if unit_words in _ascii(agencies[code].name):
                    return code
    return None


class _Province:
    """What the simulator needs from the reference, worked out once."""

    def __init__(self, reference: Reference, calendar: WorkingCalendar) -> None:
        agencies = reference.agencies
        self.agencies = agencies
        self.centres = sorted(code for code, a in agencies.items() if a.centre == code)
        serves_others = {a.centre for a in agencies.values() if a.centre != a.code}
        committees = [a.code for a in agencies.values()
                      if a.level == "province" and _is_peoples_committee(a)]
        self.province_committee = sorted(committees)[0] if committees else None

        def is_centre(agency: Agency) -> bool:
            return agency.code in serves_others and _is_centre_like(agency)

        def handlers(level: str) -> list[str]:
            found = [
                a.code for a in agencies.values()
                if a.level == level and not is_centre(a)
                and not (level == "province" and _is_peoples_committee(a))
            ]
            if not found:  # a thin reference: anyone of the level, then anyone at all
                found = [a.code for a in agencies.values() if a.level == level] or list(agencies)
            return sorted(found)

        self.handlers = {level: handlers(level) for level in ("province", "district", "commune")}
        # Local People's Committees (communes, wards, districts), each with its own units.
        self.localities: dict[str, list[str]] = {}
        self.locality_cum: dict[str, list[float]] = {}
        self.units: dict[str, list[str]] = {}
        for level in ("district", "commune"):
            local = sorted(code for code in self.handlers[level]
                           if _is_peoples_committee(agencies[code]))
            if not local:
                local = self.handlers[level]
            self.localities[level] = local
            # Wards (phường) are busier than rural communes.
            self.locality_cum[level] = list(accumulate(
                1.4 if "phường" in agencies[code].name.lower() else 1.0 for code in local
            ))
            for code in local:
                self.units[code] = sorted(
                    a.code for a in agencies.values()
                    if a.parent == code and a.level == level and not is_centre(a)
                )
        procedures = sorted(reference.procedures.values(), key=lambda p: p.code)
        self.procedures = procedures
        self.procedure_cum = list(accumulate(_procedure_weight(p) for p in procedures))
        # Province procedures belong to one department each; local procedures are handled
        # by the applicant's commune (its committee, or one of its units by field).
        self.owner: dict[str, str | None] = {}
        for procedure in procedures:
            self.owner[procedure.code] = self._owner(procedure)
        self.fields = sorted({p.field for p in procedures}) or ["Khác"]
        self._local: dict[tuple[str, str], str] = {}

    def _owner(self, procedure: Procedure) -> str | None:
        if procedure.level != "province":
            return None
        candidates = self.handlers["province"]
        for step in procedure.steps:
            if step.unit in candidates:
                return step.unit
        found = _unit_for_field(procedure.field, candidates, self.agencies)
        if found is not None:
            return found
        return candidates[zlib.crc32(procedure.code.encode()) % len(candidates)]

    def local_handler(self, procedure: Procedure, rng: Random) -> str:
        level = procedure.level
        committee = _pick(rng, self.localities[level], self.locality_cum[level])
        key = (procedure.field, committee)
        handler = self._local.get(key)
        if handler is None:
            units = self.units.get(committee, [])
            handler = _unit_for_field(procedure.field, units, self.agencies) or committee
            self._local[key] = handler
        return handler


# ---- random helpers ----------------------------------------------------------------------


class _TimeOfDay:
    """Seconds after midnight drawn from hour weights, inside given periods."""

    def __init__(self, bins: list[tuple[int, int]], weights: list[float]) -> None:
        self.bins = bins
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]

    @classmethod
    def counter(cls, periods: tuple[tuple[int, int], ...]) -> _TimeOfDay:
        bins, weights = [], []
        for start, end in periods:
            at = start
            while at < end:
                upper = min(end, (at // (15 * _MINUTE) + 1) * 15 * _MINUTE)
                bins.append((at, upper))
                weights.append(_COUNTER_HOURS.get(at // _HOUR, 0.3) * (upper - at))
                at = upper
        return cls(bins, weights)

    @classmethod
    def online(cls) -> _TimeOfDay:
        return cls([(h * _HOUR, (h + 1) * _HOUR) for h in range(24)], list(_ONLINE_HOURS))

    def draw(self, rng: Random) -> int:
        low, high = self.bins[bisect_right(self.cum, rng.random() * self.total)]
        return low + int(rng.random() * (high - low))


def _pick(rng: Random, items: list[Any], cum: list[float]) -> Any:
    return items[min(bisect_right(cum, rng.random() * cum[-1]), len(items) - 1)]


# ---- cases -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Draft:
    """A case before its number is known: drawn in any order, numbered by receipt."""

    received_at: int
    procedure: Procedure
    agency: str
    centre: str
    channel: str


class _Simulator:
    def __init__(
        self, reference: Reference, settings: SimulationSettings, calendar: WorkingCalendar
    ) -> None:
        self.reference = reference
        self.settings = settings
        self.calendar = calendar
        self.rules = CaseRules(reference, calendar)
        self.rng = Random(settings.seed)
        self.province = _Province(reference, calendar)
        self.iso = calendar.isoformat
        self.window_start = int(calendar.start_of_day(settings.start))
        last_day = settings.start + dt.timedelta(days=max(settings.days, 1) - 1)
        self.window_end = int(calendar.end_of_day(last_day))
        self.days = [settings.start + dt.timedelta(days=n) for n in range(max(settings.days, 1))]
        self.working_days = [d for d in self.days if calendar.is_working_day(d)]
        self.counter_day_cum = (
            list(accumulate(_WEEKDAY_WEIGHTS[d.weekday()] for d in self.working_days))
            if self.working_days else []
        )
        self.online_day_cum = list(accumulate(
            1.0 if calendar.is_working_day(d) else 0.6 for d in self.days
        ))
        self.day_starts = {d: int(calendar.start_of_day(d)) for d in self.days}
        self.counter_times: dict[str, _TimeOfDay] = {}
        self.online_time = _TimeOfDay.online()
        self.per_day: dict[str, int] = {}
        prefix = self._id_prefix()
        self.case_prefix = f"{prefix}-{settings.start.year}-"
        # Counter cases per (centre, day): the queue tickets that go with them.
        self.counter_visits: dict[tuple[str, dt.date], list[tuple[int, str, str]]] = {}

    def _id_prefix(self) -> str:
        prefixes = sorted({code.split("-")[0] for code in self.reference.agencies if "-" in code})
        return prefixes[0] if len(prefixes) == 1 and prefixes[0] else "HS"

    # -- working time ---------------------------------------------------------------------

    def working_day_seconds(self, centre: str) -> int:
        seconds = self.per_day.get(centre)
        if seconds is None:
            seconds = sum(end - start for start, end in self.calendar.periods(centre))
            self.per_day[centre] = seconds
        return seconds

    def counter_time(self, centre: str) -> _TimeOfDay:
        profile = self.counter_times.get(centre)
        if profile is None:
            profile = _TimeOfDay.counter(self.calendar.periods(centre))
            self.counter_times[centre] = profile
        return profile

    # -- drafting ---------------------------------------------------------------------------

    def draft(self) -> _Draft:
        rng = self.rng
        province = self.province
        procedure: Procedure = _pick(rng, province.procedures, province.procedure_cum)
        agency = province.owner[procedure.code]
        if agency is None:
            agency = province.local_handler(procedure, rng)
        centre = province.agencies[agency].centre
        roll = rng.random()
        channel = "counter" if roll < 0.55 else ("online" if roll < 0.93 else "postal")
        if channel != "online" and not self.working_days:
            channel = "online"
        if channel == "online":
            day = _pick(rng, self.days, self.online_day_cum)
            seconds = self.online_time.draw(rng)
        else:
            day = _pick(rng, self.working_days, self.counter_day_cum)
            seconds = self.counter_time(centre).draw(rng)
        return _Draft(self.day_starts[day] + seconds, procedure, agency, centre, channel)

    # -- one case ---------------------------------------------------------------------------

    # Complexity over the limit: to be split (issue 14).
    def case(self, number: int, draft: _Draft) -> list[tuple[int, dict[str, Any]]]:  # noqa: C901
        """The events of one case as (instant, event), in the order they were drawn; the
        caller fills in `event_id` and `occurred_at`."""
        rng = self.rng
        calendar = self.calendar
        procedure = draft.procedure
        agency, centre, channel = draft.agency, draft.centre, draft.channel
        case_id = f"{self.case_prefix}{number:06d}"
        received_at = draft.received_at
        accepted = int(calendar.acceptance(received_at, centre))
        legal_due = self.rules.legal_due(procedure, accepted, centre)
        per_day = self.working_day_seconds(centre)
        def add(instant: float, seconds: float) -> float:
            return calendar.add_working_seconds(instant, seconds, centre)

        events: list[tuple[int, dict[str, Any]]] = []

        def emit(at: float, kind: str, **fields: Any) -> None:
            events.append((int(at), {"event_id": "", "type": kind, "occurred_at": "",
                                     "case_id": case_id, **fields}))

        # Receipt.
        received: dict[str, Any] = {
            "procedure": procedure.code,
            "handling_agency": agency,
            "centre": centre,
            "channel": channel,
        }
        receipt_due = None
        if rng.random() < 0.70:
            receipt_due = legal_due
            if rng.random() < 0.01:  # a receipt one working day off: a data-quality finding
                due_day = calendar.day_ending(legal_due)
                shifted = calendar.add_working_days(due_day, 1 if rng.random() < 0.5 else -1)
                if shifted >= calendar.local_date(accepted):
                    receipt_due = calendar.end_of_day(shifted)
            received["due_at"] = self.iso(receipt_due)
        fee = 0
        if procedure.fee_bearing:
            fee = _FEES[zlib.crc32(procedure.code.encode()) % len(_FEES)]
        received["fee"] = fee
        full_online = False
        if channel == "online":
            full_online = bool(procedure.full_online_eligible) and rng.random() < 0.60
            received["full_online"] = full_online
        if rng.random() < 0.30:
            received["applicant"] = self.applicant()
        emit(received_at, "received", **received)

        # Payment near receipt.
        if fee > 0:
            online_pay = rng.random() < {"online": 0.80, "counter": 0.08}.get(channel, 0.15)
            if online_pay:
                paid_at = received_at + int(rng.uniform(1, 180) * _MINUTE)
            else:
                paid_at = accepted + int(rng.uniform(1, 25) * _MINUTE)
            emit(paid_at, "paid", method="online" if online_pay else "counter", amount=fee)

        # Refused at reception: no processing at all.
        fate = rng.random()
        if fate < 0.012:
            at = add(accepted, rng.uniform(5, 90) * _MINUTE)
            reason = rng.choice(_RECEPTION_REFUSAL_REASONS)
            if rng.random() < 0.10:
                emit(at, "refused", stage="reception")
            else:
                emit(at, "refused", stage="reception", reason=reason)
            return events

        base_due = receipt_due if receipt_due is not None else legal_due
        budget = calendar.working_seconds_between(accepted, base_due, centre)  # W, active

        # The end of processing in active working time.
        late = rng.random() < self.settings.late_rate
        if late:
            over = per_day * min(rng.expovariate(1 / 1.8), 15.0) + rng.uniform(10, 120) * _MINUTE
            active_end = budget + over
        else:
            if rng.random() < 0.18:
                share = rng.uniform(0.88, 0.995)  # on the due day, mostly
            else:
                share = 0.02 + 0.93 * rng.betavariate(1.4, 2.6)
            active_end = budget * share
        active_end = max(active_end, 60.0)

        # Pauses for supplements: (active offset of the request, instant of the answer).
        pauses: list[tuple[float, int]] = []
        supplement_requests: list[float] = []
        never_answered = False
        if rng.random() < 0.06:
            first = active_end * rng.uniform(0.08, 0.5)
            supplement_requests.append(first)
            if rng.random() < 0.085:  # a second request (~0.5 % of cases)
                supplement_requests.append(first + (active_end - first) * rng.uniform(0.2, 0.7))
            never_answered = rng.random() < 0.08

        def at_active(offset: float) -> int:
            base, since = accepted, 0.0
            for request, answer in pauses:
                if offset > request:
                    base, since = answer, request
            return int(add(base, offset - since))

        request_instants: list[tuple[int, int | None]] = []
        for number_, request in enumerate(supplement_requests):
            asked = at_active(request)
            if never_answered and number_ == len(supplement_requests) - 1:
                request_instants.append((asked, None))
                break
            days = rng.choice((1, 1, 2, 2, 3, 4, 5))
            answered = int(add(asked, (days - rng.uniform(0.0, 0.6)) * per_day))
            pauses.append((request, answered))
            request_instants.append((asked, answered))

        # The due instant as the rules compute it: the base due moved by the paused time.
        paused = sum(calendar.working_seconds_between(a, b, centre)
                     for a, b in request_instants if b is not None)
        due = move_due(calendar, base_due, paused, centre)

        # Hand-offs in active time, ending with the result back at the centre.
        hops, processed_active = self.route(procedure, agency, centre, active_end, late)
        end_at = at_active(active_end)

        # Other ends: withdrawn or stopped part-way.
        stop_active = None
        other = rng.random()
        if other < 0.008:
            stop_active, stop_kind = active_end * rng.uniform(0.1, 0.9), "withdrawn"
        elif other < 0.010:
            stop_active, stop_kind = active_end * rng.uniform(0.2, 0.9), "stopped"
        open_after = None
        if never_answered:
            open_after = supplement_requests[-1]
        if stop_active is not None and (open_after is None or stop_active < open_after):
            open_after = stop_active
        stays_open = late and rng.random() < 0.15  # overdue and never processed

        for offset, from_unit, to_unit, method in hops:
            if open_after is not None and offset > open_after:
                break
            if stays_open and offset >= processed_active:
                break
            emit(at_active(offset), "transferred", from_unit=from_unit, to_unit=to_unit,
                 method=method)
        for asked, answer in request_instants:
            if stop_active is not None and asked > at_active(stop_active):
                break
            emit(asked, "supplement_requested", reason=rng.choice(_SUPPLEMENT_REASONS))
            if answer is not None:
                emit(answer, "supplement_received")
        if stop_active is not None and (not never_answered
                                        or stop_active < supplement_requests[-1]):
            at = at_active(stop_active)
            if stop_kind == "withdrawn":
                emit(at, "withdrawn")
            else:
                emit(at, "stopped", reason=rng.choice(_STOP_REASONS))
            return events
        if never_answered:
            return events

        # Apology letters for late cases.
        if late and rng.random() < 0.60:
            self.apologies(emit, agency, centre, accepted, due,
                           None if stays_open else end_at, per_day)
        if stays_open:
            return events

        # Processing ends; the result goes back to the centre and is handed over.
        refused = rng.random() < 0.04
        result: dict[str, Any] = {"outcome": "refused" if refused else "approved"}
        if refused and rng.random() >= 0.10:
            result["reason"] = rng.choice(_REFUSAL_REASONS)
        result["electronic_result"] = rng.random() < 0.70
        emit(end_at, "processed", **result)
        back = end_at
        for offset, *_ in hops:
            if offset > processed_active:
                back = at_active(offset)
        roll = rng.random()
        if channel == "online" and (full_online or roll < 0.5):
            returned_at = add(back, rng.uniform(1, 60) * _MINUTE)
            return_channel = "online" if full_online or rng.random() < 0.8 else "postal"
        else:
            delay = rng.choice((0.05, 0.2, 0.5, 1.0, 1.0, 1.5, 2.0)) * per_day
            returned_at = add(back, delay * rng.uniform(0.5, 1.0))
            if channel == "postal":
                return_channel = "postal" if roll < 0.85 else "counter"
            else:
                return_channel = "counter" if roll < 0.88 else "postal"
        returned_at = int(returned_at)
        emit(returned_at, "returned", channel=return_channel)
        if rng.random() < 0.20:
            unhappy = 0.12 if late or refused else 0.02
            roll = rng.random()
            rating = ("unsatisfied" if roll < unhappy
                      else "very_satisfied" if roll < unhappy + 0.45 else "satisfied")
            emit(returned_at + int(rng.uniform(1, 120) * _MINUTE), "rated", rating=rating)
        return events

    def route(
        self, procedure: Procedure, agency: str, centre: str, active_end: float, late: bool
    ) -> tuple[list[tuple[float, str, str, str]], float]:
        """Hand-offs (active offset, from, to, method) and the active offset at which
        processing ends (the `processed` instant)."""
        rng = self.rng
        # Some units still move files on paper; most hand-offs are electronic (~85 %).
        paper_share = 0.65 if rng.random() < 0.12 else 0.08

        def method() -> str:
            return "paper" if rng.random() < paper_share else "electronic"

        hops: list[tuple[float, str, str, str]] = []
        steps = procedure.steps
        if len(steps) >= 2:
            units = [step.unit for step in steps]
            budgets = [max(step.budget_seconds, 60) for step in steps]
            # A trailing step at the centre is the return of the result, not processing.
            trailing = len(units) > 2 and units[-1] == centre
            working = len(units) - 1 if trailing else len(units)
            weights = [budgets[i] * rng.lognormvariate(0.0, 0.3) for i in range(working)]
            if late:
                culprit = rng.randrange(working)
                weights[culprit] *= rng.uniform(2.0, 4.0)
            total = sum(weights)
            offset = 0.0
            for i in range(1, working):
                offset += active_end * weights[i - 1] / total
                if units[i] != units[i - 1]:
                    hops.append((offset, units[i - 1], units[i], method()))
            last = units[working - 1]
            if last != centre:
                hops.append((active_end + rng.uniform(1, 30) * _MINUTE, last, centre, method()))
            return hops, active_end
        # No internal process: centre → agency (→ People's Committee or back) → centre.
        if agency == centre:
            return hops, active_end
        first = min(active_end * rng.uniform(0.02, 0.15), rng.uniform(5, 240) * _MINUTE)
        hops.append((first, centre, agency, method()))
        holder = agency
        # Who signs: the province's People's Committee for a provincial procedure; for a
        # commune one, the commune's own (a unit's file goes to its committee, the
        # committee signs its own): two-tier local government, from 1 July 2025.
        committee = self.province.province_committee
        if procedure.level != "province":
            parent = self.province.agencies[agency].parent
            local = agency not in self.province.units and parent in self.province.units
            committee = parent if local else None
        if committee and committee != agency and rng.random() < (
            0.30 if procedure.level == "province" else 0.70
        ):
            signing = active_end * rng.uniform(0.7, 0.92)
            hops.append((signing, agency, committee, method()))
            holder = committee
        elif procedure.level != "commune" and rng.random() < 0.08:
            others = [a for a in self.province.handlers[procedure.level] if a != agency]
            if others:
                appraiser = rng.choice(others)
                sent = active_end * rng.uniform(0.3, 0.5)
                hops.append((sent, agency, appraiser, method()))
                hops.append((active_end * rng.uniform(0.6, 0.85), appraiser, agency, method()))
        hops.append((active_end + rng.uniform(1, 45) * _MINUTE, holder, centre, method()))
        return hops, active_end

    def apologies(
        self,
        emit: Callable[..., None],
        agency: str,
        centre: str,
        accepted: int,
        due: float,
        end_at: int | None,
        per_day: int,
    ) -> None:
        """One apology (sometimes two) for a late case: in time when possible, else late."""
        rng = self.rng
        calendar = self.calendar
        due_day = calendar.day_ending(due)
        deadline_day = calendar.add_working_days(due_day, -1)
        deadline = calendar.end_of_day(deadline_day)
        issued = None
        if rng.random() < 0.7 and calendar.local_date(accepted) <= deadline_day:
            back = rng.choice((0, 0, 0, 1))
            day = max(calendar.add_working_days(deadline_day, -back), calendar.local_date(accepted))
            day = calendar.next_working_day_from(day)
            if day <= deadline_day:
                start = max(calendar.acceptance(calendar.start_of_day(day), centre), accepted)
                issued = int(add_within_day(calendar, start, rng.random(), centre))
                if issued > deadline:
                    issued = None
        if issued is None:  # issued late: after the deadline, before the end
            since = max(deadline, accepted)
            issued = int(calendar.add_working_seconds(
                since, rng.uniform(0.05, 1.3) * per_day, centre))
            if end_at is not None and issued >= end_at:
                issued = int(since + (end_at - since) * rng.uniform(0.3, 0.9))
        agency_record = self.province.agencies[agency]
        signer = agency_record.head_name or self.name()
        new_due_day = calendar.add_working_days(due_day, rng.randint(2, 7))
        new_due = calendar.end_of_day(new_due_day)
        emit(issued, "apology_issued", agency=agency, new_due_at=self.iso(new_due),
             reason=rng.choice(_APOLOGY_REASONS), signed_by=signer)
        if rng.random() < 0.06:  # re-scheduled a second time: rare, but a demo should show it
            second_at = int(calendar.add_working_seconds(
                issued, rng.uniform(0.5, 2.0) * per_day, centre))
            if end_at is not None and second_at >= end_at:
                second_at = int(issued + (end_at - issued) * rng.uniform(0.4, 0.9))
            if second_at > issued:
                later = calendar.end_of_day(calendar.add_working_days(new_due_day,
                                                                      rng.randint(3, 10)))
                emit(second_at, "apology_issued", agency=agency, new_due_at=self.iso(later),
                     reason=rng.choice(_APOLOGY_REASONS), signed_by=signer)

    # -- applicants ---------------------------------------------------------------------------

    def name(self) -> str:
        rng = self.rng
        return f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"

    def applicant(self) -> dict[str, str]:
        rng = self.rng
        family = int(rng.random() * len(_FAMILY))
        given = int(rng.random() * len(_GIVEN))
        name = f"{_FAMILY[family]} {rng.choice(_MIDDLE)} {_GIVEN[given]}"
        person: dict[str, str] = {
            "name": name,
            "address": f"Số {rng.randint(1, 250)}, đường {rng.choice(_STREETS)}, "
                       f"tổ {rng.randint(1, 30)}",
            "phone": f"{rng.choice(_PHONE_PREFIXES)}{rng.randint(0, 9_999_999):07d}",
        }
        if rng.random() < 0.6:
            person["email"] = (f"{_GIVEN_ASCII[given]}.{_FAMILY_ASCII[family]}"
                               f"{rng.randint(1, 999)}@{rng.choice(_MAIL_DOMAINS)}")
        return person

    # -- queue tickets ------------------------------------------------------------------------

    def tickets(self) -> list[tuple[int, dict[str, Any]]]:
        """Queue events of every centre on every working day of the window."""
        rng = self.rng
        settings = self.settings
        fixed = settings.tickets_per_centre_day
        events: list[tuple[int, dict[str, Any]]] = []
        working = len(self.working_days) or 1
        for centre in self.province.centres:
            visits_per_day = sum(len(self.counter_visits.get((centre, d), ()))
                                 for d in self.working_days) / working
            expected = fixed or visits_per_day * 1.35
            counters = max(2, min(20, math.ceil(expected / 28)))
            profile = self.counter_time(centre)
            for day in self.working_days:
                linked = list(self.counter_visits.get((centre, day), ()))
                if fixed:
                    if len(linked) > fixed:
                        rng.shuffle(linked)
                        linked = sorted(linked[:fixed])
                    extras = fixed - len(linked)
                else:
                    extras = round(len(linked) * 0.35) + rng.randint(0, 2)
                abandon = min(0.6, 0.03 * (len(linked) + extras) / extras) if extras else 0.0
                day_start = self.day_starts[day]
                tickets: list[tuple[int, list[tuple[int, str, dict[str, Any]]]]] = []
                for received_at, case_id, field in linked:
                    tickets.append(self.linked_ticket(received_at, case_id, field, counters,
                                                      day, day_start))
                for _ in range(extras):
                    issued = day_start + profile.draw(rng)
                    tickets.append(self.walk_in(issued, counters, day, day_start, abandon))
                tickets.sort(key=lambda item: item[0])
                stamp = day.strftime("%Y%m%d")
                for number, (_, ticket_events) in enumerate(tickets, 1):
                    ticket_id = f"Q-{centre}-{stamp}-{number:04d}"
                    for index, (at, kind, fields) in enumerate(ticket_events, 1):
                        events.append((at, {
                            "event_id": f"{ticket_id}-{index}",
                            "type": kind,
                            "occurred_at": self.iso(at),
                            "ticket_id": ticket_id,
                            "centre": centre,
                            **fields,
                        }))
        return events

    def wait(self, at: int, day: dt.date, day_start: int) -> int:
        rng = self.rng
        median_log = _WAIT_MEDIAN_LOG
        if day.weekday() == 0 and at - day_start < 11 * _HOUR:
            median_log += 0.45  # Monday mornings
        return max(20, int(rng.lognormvariate(median_log, _WAIT_SIGMA)))

    def linked_ticket(
        self, received_at: int, case_id: str, field: str, counters: int, day: dt.date,
        day_start: int,
    ) -> tuple[int, list[tuple[int, str, dict[str, Any]]]]:
        rng = self.rng
        counter = f"Quầy {1 + int(rng.random() * counters)}"
        last_call = received_at - int(rng.uniform(1, 6) * _MINUTE)
        first_call = last_call
        if rng.random() < 0.04:
            first_call = last_call - int(rng.uniform(1, 4) * _MINUTE)
        issued = first_call - self.wait(received_at, day, day_start)
        done = received_at + int(rng.uniform(2, 18) * _MINUTE)
        events = [(issued, "ticket_issued", {"service": field}),
                  (first_call, "ticket_called", {"counter": counter})]
        if last_call != first_call:
            events.append((last_call, "ticket_called", {"counter": counter}))
        completed: dict[str, Any] = {"counter": counter}
        if rng.random() < 0.5:
            completed["case_id"] = case_id
        events.append((done, "service_completed", completed))
        return issued, events

    def walk_in(
        self, issued: int, counters: int, day: dt.date, day_start: int, abandon: float
    ) -> tuple[int, list[tuple[int, str, dict[str, Any]]]]:
        rng = self.rng
        fields = self.province.fields
        events: list[tuple[int, str, dict[str, Any]]] = [
            (issued, "ticket_issued", {"service": fields[int(rng.random() * len(fields))]})
        ]
        counter = f"Quầy {1 + int(rng.random() * counters)}"
        if rng.random() < abandon:
            if rng.random() < 0.5:
                called = issued + self.wait(issued, day, day_start)
                events.append((called, "ticket_called", {"counter": counter}))
                events.append((called + int(rng.uniform(2, 5) * _MINUTE), "ticket_abandoned", {}))
            else:
                events.append((issued + int(rng.uniform(10, 60) * _MINUTE), "ticket_abandoned",
                               {}))
            return issued, events
        called = issued + self.wait(issued, day, day_start)
        events.append((called, "ticket_called", {"counter": counter}))
        if rng.random() < 0.04:
            called += int(rng.uniform(1, 4) * _MINUTE)
            events.append((called, "ticket_called", {"counter": counter}))
        events.append((called + int(rng.uniform(2, 12) * _MINUTE), "service_completed",
                       {"counter": counter}))
        return issued, events

    # -- the stream ---------------------------------------------------------------------------

    def run(self) -> Iterator[dict[str, Any]]:
        # Hundreds of thousands of small dicts and no reference cycles: the cyclic garbage
        # collector would only rescan them over and over while they are built.
        collecting = gc.isenabled()
        gc.disable()
        try:
            delivery = self.delivery()
        finally:
            if collecting:
                gc.enable()
        for item in delivery:
            yield item[3]

    def delivery(self) -> list[tuple[int, int, int, dict[str, Any]]]:
        """Every event with its delivery key, in delivery order."""
        settings = self.settings
        rng = self.rng
        drafts = [self.draft() for _ in range(max(settings.cases, 0))]
        drafts.sort(key=lambda d: d.received_at)  # stable: numbered in order of receipt
        window_end = self.window_end
        iso = self.iso
        # (instant, sequence, case id, event); the sequence keeps each case's own order on
        # ties and makes every key unique, so the events themselves are never compared.
        stream: list[tuple[int, int, str | None, dict[str, Any]]] = []
        sequence = 0
        for number, draft in enumerate(drafts, 1):
            case_events = self.case(number, draft)
            case_events.sort(key=_first)
            case_id = f"{self.case_prefix}{number:06d}"
            index = 0
            for at, event in case_events:
                if at > window_end:
                    break
                index += 1
                event["event_id"] = f"{case_id}-{index:02d}"
                event["occurred_at"] = iso(at)
                stream.append((at, sequence, case_id, event))
                sequence += 1
            if draft.channel == "counter":
                day = self.calendar.local_date(draft.received_at)
                self.counter_visits.setdefault((draft.centre, day), []).append(
                    (draft.received_at, case_id, draft.procedure.field))
        for at, event in self.tickets():
            stream.append((at, sequence, None, event))
            sequence += 1
        stream.sort()

        # Delivery: (instant, sequence, tie, event). An out-of-order case event takes the
        # place just before the previous event of its case; a duplicate comes a little later.
        disorder, duplicate = settings.disorder_rate, settings.duplicate_rate
        delivery: list[tuple[int, int, int, dict[str, Any]]] = []
        previous: dict[str, tuple[int, int]] = {}
        random = rng.random
        for at, seq, owner, event in stream:
            key_at, key_seq, tie = at, seq, 0
            if owner is not None:
                before = previous.get(owner)
                if before is not None and disorder > 0 and random() < disorder:
                    key_at, key_seq, tie = before[0], before[1], -1
                else:
                    previous[owner] = (at, seq)
            delivery.append((key_at, key_seq, tie, event))
            if duplicate > 0 and random() < duplicate:
                delay = int(rng.expovariate(1 / 300)) + 1
                delivery.append((key_at + delay, key_seq, 1, event))
        del stream
        delivery.sort(key=_delivery_key)
        return delivery


_first = itemgetter(0)


def _delivery_key(item: tuple[int, int, int, dict[str, Any]]) -> tuple[int, int, int]:
    return item[0], item[1], item[2]


def add_within_day(calendar: WorkingCalendar, start: float, share: float, centre: str) -> float:
    """An instant `share` of the way through the working time left on `start`'s day."""
    day = calendar.local_date(start)
    close = calendar.start_of_day(day) + calendar.periods(centre)[-1][1]
    left = calendar.working_seconds_between(start, close, centre)
    return calendar.add_working_seconds(start, left * share, centre)


# ---- public API --------------------------------------------------------------------------


def simulate(
    reference: Reference, settings: SimulationSettings, calendar: WorkingCalendar | None = None
) -> Iterator[dict[str, Any]]:
    """Events as JSON-ready dicts, in delivery order."""
    calendar = calendar or WorkingCalendar.from_reference(reference)
    return _Simulator(reference, settings, calendar).run()


def write_jsonl(
    events: Iterable[dict[str, Any]],
    path: Path,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write events one per line with orjson; return the count. `progress` gets the running
    count every 10,000 events."""
    dumps = orjson.dumps
    count = 0
    batch: list[bytes] = []
    with Path(path).open("wb") as handle:
        for event in events:
            batch.append(dumps(event))
            count += 1
            if count % 10_000 == 0:
                handle.write(b"\n".join(batch) + b"\n")
                batch.clear()
                if progress is not None:
                    progress(count)
        if batch:
            handle.write(b"\n".join(batch) + b"\n")
    return count
