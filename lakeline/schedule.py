"""Amazon EventBridge schedule expressions, evaluated locally (all times UTC).

Two forms, exactly as EventBridge documents them:

``cron(minutes hours day-of-month month day-of-week year)``
    Six fields separated by white space.

    ============  ===============  ===============
    field         values           wildcards
    ============  ===============  ===============
    minutes       0-59             ``, - * /``
    hours         0-23             ``, - * /``
    day-of-month  1-31             ``, - * ? / L W``
    month         1-12 or JAN-DEC  ``, - * /``
    day-of-week   1-7 or SUN-SAT   ``, - * ? L #``
    year          1970-2199        ``, - * /``
    ============  ===============  ===============

    Day-of-week counts from **1 = SUN** to 7 = SAT (not cron's 0 = SUN). Exactly one of
    day-of-month and day-of-week must be ``?``. ``a/n`` starts at ``a`` and steps by ``n``
    (``*/n`` and ``a-b/n`` too). In day-of-month, ``L`` is the last day, ``LW`` the last
    weekday, ``15W`` the weekday nearest the 15th without leaving the month (a month without
    the day ``nW`` names is skipped: ``31W`` never fires in April). In day-of-week, ``L`` is
    Saturday, ``6L`` the last Friday of the month and ``2#1`` the first Monday (a month without
    a fifth Monday does not fire ``2#5``). ``L``, ``W`` and ``#`` stand alone in their field:
    EventBridge (like Quartz) does not combine them with lists. Ranges run low to high
    (``FRI-MON`` is refused). Names are case-insensitive.

``rate(value unit)``
    ``value`` a positive integer, ``unit`` one of minute | minutes | hour | hours | day | days,
    singular exactly when ``value`` is 1. EventBridge starts a rate schedule when the rule is
    created; here the start is the ``anchor`` given to :func:`parse` (default the Unix epoch,
    so ``rate(5 minutes)`` fires on :00, :05, ... and ``rate(1 day)`` at midnight UTC). The
    fire times are ``anchor + k * interval`` for k >= 1: the anchor itself is not a fire time.

Datetimes passed in may be naive (taken as UTC) or aware (converted to UTC); every datetime
returned is aware UTC. Cron fire times fall on whole minutes; ``next_after`` is strictly
after its argument.

:class:`Scheduler` turns schedules into "this rule is due now" decisions for a long-running
loop (``lakeline serve``), remembering the last fire time of each rule in the state store
table ``schedules`` so restarts neither repeat nor lose a tick, and so two processes sharing
the store cannot both fire the same tick.
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from lakeline.errors import ConditionFailed, UsageError
from lakeline.ports.state import StateStore

#: State store table holding one item per rule: ``{"last": ISO time, "expression": ...}``.
SCHEDULES = "schedules"

#: Default cap on how many fire times :meth:`Schedule.fires_between` returns.
FIRES_LIMIT = 10_000

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MONTHS = {name: i for i, name in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1)}
_WEEKDAYS = {name: i for i, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], start=1)}
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_FORM = re.compile(r"(cron|rate)\((.*)\)", re.DOTALL)
_INT = re.compile(r"[0-9]+")


def utc(t: datetime) -> datetime:
    """``t`` as an aware UTC datetime (a naive ``t`` is taken to be UTC already)."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


class Schedule(ABC):
    """A parsed schedule expression."""

    expression: str

    @abstractmethod
    def next_after(self, t: datetime) -> datetime | None:
        """The first fire time strictly after ``t``, or None when there is none (a cron
        schedule whose years are exhausted)."""

    @abstractmethod
    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The last fire time at or before ``t``, or None when there is none."""

    def fires_between(self, a: datetime, b: datetime, *, limit: int = FIRES_LIMIT) -> list[datetime]:
        """Every fire time ``f`` with ``a < f <= b``, in order. Raises :class:`UsageError`
        rather than return more than ``limit`` of them."""
        end = utc(b)
        out: list[datetime] = []
        nxt = self.next_after(a)
        while nxt is not None and nxt <= end:
            if len(out) >= limit:
                raise UsageError(
                    f"{self.expression} fires more than {limit} times between {utc(a).isoformat()}"
                    f" and {end.isoformat()}; narrow the window or raise the limit"
                )
            out.append(nxt)
            nxt = self.next_after(nxt)
        return out

    def __str__(self) -> str:
        return self.expression


# ---- rate ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RateSchedule(Schedule):
    """``rate(value unit)``: fires at ``anchor + k * interval`` for k >= 1."""

    expression: str
    interval: timedelta
    anchor: datetime = EPOCH

    def next_after(self, t: datetime) -> datetime | None:
        k = max((utc(t) - self.anchor) // self.interval + 1, 1)
        return self.anchor + k * self.interval

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        k = (utc(t) - self.anchor) // self.interval
        return None if k < 1 else self.anchor + k * self.interval


def _parse_rate(expression: str, body: str, anchor: datetime) -> RateSchedule:
    parts = body.split()
    if len(parts) != 2:
        raise UsageError(
            f"{expression}: a rate expression is rate(value unit), e.g. rate(5 minutes);"
            f" got {len(parts)} field(s)"
        )
    value, unit = parts
    if not _INT.fullmatch(value) or int(value) < 1:
        raise UsageError(f"{expression}: rate value must be a positive integer, got {value!r}")
    n = int(value)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _UNITS:
        raise UsageError(
            f"{expression}: rate unit must be one of minute, minutes, hour, hours, day, days;"
            f" got {unit!r}"
        )
    if n == 1 and unit != singular:
        raise UsageError(f"{expression}: a value of 1 takes the singular unit: rate(1 {singular})")
    if n > 1 and unit == singular:
        raise UsageError(f"{expression}: a value above 1 takes the plural unit: rate({n} {singular}s)")
    return RateSchedule(expression, n * _UNITS[singular], utc(anchor))


# ---- cron ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: Mapping[str, int]
    step_ok: bool


_MINUTES = _Field("minutes", 0, 59, {}, True)
_HOURS = _Field("hours", 0, 23, {}, True)
_DOM = _Field("day-of-month", 1, 31, {}, True)
_MONTH = _Field("month", 1, 12, _MONTHS, True)
_DOW = _Field("day-of-week", 1, 7, _WEEKDAYS, False)
_YEAR = _Field("year", 1970, 2199, {}, True)


@dataclass(frozen=True)
class _Days:
    """Which days of a month fire. ``kind``: ``dom`` (``values`` are days of month), ``dow``
    (``values`` are AWS weekdays 1=SUN), ``last`` (L), ``last_weekday`` (LW), ``nearest``
    (``n``W), ``last_dow`` (``n``L), ``nth_dow`` (``n``#``k``)."""

    kind: str
    values: frozenset[int] = frozenset()
    n: int = 0
    k: int = 0

    def days(self, year: int, month: int) -> list[int]:
        first_weekday, last = calendar.monthrange(year, month)  # weekday: Monday = 0

        def dow(day: int) -> int:  # AWS weekday, 1 = SUN ... 7 = SAT
            return (first_weekday + day - 1 + 1) % 7 + 1

        if self.kind == "dom":
            return [d for d in sorted(self.values) if d <= last]
        if self.kind == "dow":
            return [d for d in range(1, last + 1) if dow(d) in self.values]
        if self.kind == "last":
            return [last]
        if self.kind == "last_weekday":
            return [_nearest_weekday(last, last, dow)]
        if self.kind == "nearest":
            return [] if self.n > last else [_nearest_weekday(self.n, last, dow)]
        matching = [d for d in range(1, last + 1) if dow(d) == self.n]
        if self.kind == "last_dow":
            return matching[-1:]
        return matching[self.k - 1 : self.k]  # nth_dow


def _nearest_weekday(day: int, last: int, dow: Callable[[int], int]) -> int:
    """The weekday nearest ``day`` without leaving the month (Quartz ``W``)."""
    weekday = dow(day)
    if weekday == 7:  # Saturday: the Friday before, or Monday the 3rd if the 1st is a Saturday
        return day + 2 if day == 1 else day - 1
    if weekday == 1:  # Sunday: the Monday after, or the Friday before if the month ends
        return day - 2 if day == last else day + 1
    return day


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """``cron(minutes hours day-of-month month day-of-week year)``."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_rule: _Days
    months: tuple[int, ...]
    years: tuple[int, ...]

    def next_after(self, t: datetime) -> datetime | None:
        start = utc(t).replace(second=0, microsecond=0) + timedelta(minutes=1)
        return self._search(start, forward=True)

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        return self._search(utc(t).replace(second=0, microsecond=0), forward=False)

    def _search(self, bound: datetime, *, forward: bool) -> datetime | None:
        """The first (``forward``) or last fire time on the far side of ``bound``, inclusive."""

        def pick(values: Sequence[int], limit: int, constrained: bool) -> Iterable[int]:
            if forward:
                return [v for v in values if v >= limit] if constrained else values
            return [v for v in reversed(values) if v <= limit] if constrained else values[::-1]

        for year in pick(self.years, bound.year, True):
            at_year = year == bound.year
            for month in pick(self.months, bound.month, at_year):
                at_month = at_year and month == bound.month
                for day in pick(self.day_rule.days(year, month), bound.day, at_month):
                    at_day = at_month and day == bound.day
                    for hour in pick(self.hours, bound.hour, at_day):
                        at_hour = at_day and hour == bound.hour
                        for minute in pick(self.minutes, bound.minute, at_hour):
                            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        return None


def _value(expression: str, field: _Field, token: str, text: str) -> int:
    name = text.upper()
    if name in field.names:
        return field.names[name]
    if not _INT.fullmatch(text):
        names = list(field.names)
        hint = f" or {names[0]}-{names[-1]}" if names else ""
        raise UsageError(
            f"{expression}: {field.name} field: token {token!r}: {text!r} is not a number"
            f" {field.low}-{field.high}{hint}"
        )
    value = int(text)
    if not field.low <= value <= field.high:
        raise UsageError(
            f"{expression}: {field.name} field: token {token!r}: {value} is outside"
            f" {field.low}-{field.high}"
        )
    return value


def _values(expression: str, field: _Field, text: str) -> tuple[int, ...]:
    """The sorted values of a plain field: lists of ``*``, ``a``, ``a-b``, each with an
    optional ``/step``."""
    out: set[int] = set()
    for token in text.split(","):
        if not token:
            raise UsageError(f"{expression}: {field.name} field {text!r} has an empty list item")
        base, slash, step_text = token.partition("/")
        step = 1
        if slash:
            if not field.step_ok:
                raise UsageError(
                    f"{expression}: {field.name} field: token {token!r}: '/' is not allowed here"
                )
            if not _INT.fullmatch(step_text) or int(step_text) < 1:
                raise UsageError(
                    f"{expression}: {field.name} field: token {token!r}: the increment after '/'"
                    f" must be a positive integer"
                )
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            first, _, last = base.partition("-")
            low = _value(expression, field, token, first)
            high = _value(expression, field, token, last)
            if low > high:
                raise UsageError(
                    f"{expression}: {field.name} field: token {token!r}: range runs backwards"
                    f" ({low} > {high})"
                )
        else:
            low = _value(expression, field, token, base)
            high = field.high if slash else low
        out.update(range(low, high + 1, step))
    return tuple(sorted(out))


def _alone(expression: str, field: _Field, text: str, what: str) -> None:
    if "," in text:
        raise UsageError(
            f"{expression}: {field.name} field {text!r}: {what} cannot be combined with other"
            f" values in a list"
        )


def _day_of_month(expression: str, text: str) -> _Days:
    upper = text.upper()
    if "L" in upper or "W" in upper:
        _alone(expression, _DOM, text, "'L' and 'W'")
        if upper == "L":
            return _Days("last")
        if upper == "LW":
            return _Days("last_weekday")
        if upper.endswith("W") and _INT.fullmatch(text[:-1]):
            return _Days("nearest", n=_value(expression, _DOM, text, text[:-1]))
        raise UsageError(
            f"{expression}: day-of-month field: token {text!r}: expected L, LW or <day>W"
            " (e.g. 15W)"
        )
    return _Days("dom", frozenset(_values(expression, _DOM, text)))


def _day_of_week(expression: str, text: str) -> _Days:
    upper = text.upper()
    if "#" in upper:
        _alone(expression, _DOW, text, "'#'")
        day, _, nth = text.partition("#")
        if not _INT.fullmatch(nth) or not 1 <= int(nth) <= 5:
            raise UsageError(
                f"{expression}: day-of-week field: token {text!r}: the instance after '#' must"
                " be 1-5"
            )
        return _Days("nth_dow", n=_value(expression, _DOW, text, day), k=int(nth))
    if upper.endswith("L"):
        _alone(expression, _DOW, text, "'L'")
        if upper == "L":
            return _Days("dow", frozenset({7}))  # the last day of the week: Saturday
        return _Days("last_dow", n=_value(expression, _DOW, text, text[:-1]))
    return _Days("dow", frozenset(_values(expression, _DOW, text)))


_FIELD_NAMES = "minutes hours day-of-month month day-of-week year"


def _parse_cron(expression: str, body: str) -> CronSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise UsageError(
            f"{expression}: a cron expression has 6 fields ({_FIELD_NAMES}); got {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    for field, text in ((_MINUTES, minutes), (_HOURS, hours), (_MONTH, month), (_YEAR, year)):
        if "?" in text:
            raise UsageError(
                f"{expression}: {field.name} field {text!r}: '?' is allowed only in day-of-month"
                " or day-of-week"
            )
    if dom == "?" and dow == "?":
        raise UsageError(f"{expression}: day-of-month and day-of-week cannot both be '?'")
    if dom != "?" and dow != "?":
        raise UsageError(
            f"{expression}: one of day-of-month ({dom!r}) and day-of-week ({dow!r}) must be '?'"
        )
    for field, text in ((_DOM, dom), (_DOW, dow)):
        if "?" in text and text != "?":
            raise UsageError(f"{expression}: {field.name} field {text!r}: '?' must stand alone")
    days = _day_of_week(expression, dow) if dom == "?" else _day_of_month(expression, dom)
    return CronSchedule(
        expression,
        _values(expression, _MINUTES, minutes),
        _values(expression, _HOURS, hours),
        days,
        _values(expression, _MONTH, month),
        _values(expression, _YEAR, year),
    )


def parse(expression: str, *, anchor: datetime | None = None) -> Schedule:
    """Parse ``cron(...)`` or ``rate(...)``; ``anchor`` is when a rate schedule starts (the
    rule's creation time in EventBridge; default the Unix epoch) and is ignored for cron.
    Raises :class:`UsageError` naming the field and token at fault."""
    text = expression.strip()
    match = _FORM.fullmatch(text)
    if match is None:
        raise UsageError(
            f"{expression!r} is not a schedule expression: expected cron(minutes hours"
            " day-of-month month day-of-week year) or rate(value unit)"
        )
    kind, body = match.groups()
    if kind == "rate":
        return _parse_rate(text, body, EPOCH if anchor is None else anchor)
    return _parse_cron(text, body)


# ---- scheduler -----------------------------------------------------------------------------
class Scheduler:
    """Decides which rules are due, once per fire time, across restarts and processes.

    Each rule has an item ``schedules/<name>`` holding ``last``: the latest fire time already
    claimed (or, before the first fire, the time the rule was first seen). :meth:`due` claims
    the latest fire time in ``(last, now]`` with a compare-and-swap on the item's version, so
    of several schedulers sharing the store exactly one returns the rule for that tick. Ticks
    missed while nothing ran collapse into one fire. A rule seen for the first time fires only
    for ticks after ``since`` (default: the ``now`` of that first :meth:`due` call) -
    EventBridge does not backfill before a rule exists either.
    """

    def __init__(
        self,
        rules: Mapping[str, Schedule],
        state: StateStore,
        *,
        since: datetime | None = None,
        table: str = SCHEDULES,
    ) -> None:
        self.rules = dict(rules)
        self.state = state
        self.since = None if since is None else utc(since)
        self.table = table

    def due(self, now: datetime) -> list[str]:
        """Names of the rules (sorted) that this caller should fire now; each fire time is
        returned to exactly one caller, once."""
        now = utc(now)
        fired: list[str] = []
        for name in sorted(self.rules):
            schedule = self.rules[name]
            item = self.state.get(self.table, name)
            if item is None:
                baseline = self.since if self.since is not None else now
                data = {"last": baseline.isoformat(), "expression": schedule.expression}
                try:
                    item = self.state.put(self.table, name, data, if_absent=True)
                except ConditionFailed:
                    item = self.state.get(self.table, name)
                    if item is None:  # created and deleted meanwhile: try next time
                        continue
            last = datetime.fromisoformat(str(item.data["last"]))
            tick = schedule.latest_at_or_before(now)
            if tick is None or tick <= last:
                continue
            data = {"last": tick.isoformat(), "expression": schedule.expression}
            try:
                self.state.put(self.table, name, data, expected_version=item.version)
            except ConditionFailed:
                continue  # another scheduler claimed this tick
            fired.append(name)
        return fired

    def last_fired(self, name: str) -> datetime | None:
        """The latest fire time claimed for ``name`` (or its first-seen time), if any."""
        item = self.state.get(self.table, name)
        return None if item is None else datetime.fromisoformat(str(item.data["last"]))

    def next_fire(self, now: datetime) -> datetime | None:
        """The earliest fire time of any rule strictly after ``now`` (for sleeping until it)."""
        times = [t for s in self.rules.values() if (t := s.next_after(now)) is not None]
        return min(times, default=None)
