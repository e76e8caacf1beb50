"""EventBridge schedule expressions (cron/rate) and the once-per-tick Scheduler."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from lakeline.adapters.local.sqlite import Database
from lakeline.adapters.local.state import SCHEMA, SqliteStateStore
from lakeline.errors import UsageError
from lakeline.schedule import SCHEDULES, CronSchedule, RateSchedule, Scheduler, parse


def T(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fires(expression: str, a: datetime, b: datetime) -> list[datetime]:
    return parse(expression).fires_between(a, b)


# ---- cron ------------------------------------------------------------------------------------
def test_daily_at_0115():
    s = parse("cron(15 1 * * ? *)")
    assert isinstance(s, CronSchedule)
    assert s.next_after(T(2026, 3, 10, 0, 0)) == T(2026, 3, 10, 1, 15)
    assert s.next_after(T(2026, 3, 10, 1, 15)) == T(2026, 3, 11, 1, 15)  # strictly after
    assert s.next_after(T(2026, 3, 10, 1, 14, 59, 999999)) == T(2026, 3, 10, 1, 15)
    assert s.next_after(T(2026, 12, 31, 2, 0)) == T(2027, 1, 1, 1, 15)
    assert s.latest_at_or_before(T(2026, 3, 10, 1, 15)) == T(2026, 3, 10, 1, 15)
    assert s.latest_at_or_before(T(2026, 3, 10, 1, 14)) == T(2026, 3, 9, 1, 15)


def test_every_15_minutes():
    assert fires("cron(0/15 * * * ? *)", T(2026, 1, 1, 23, 20), T(2026, 1, 2, 0, 30)) == [
        T(2026, 1, 1, 23, 30), T(2026, 1, 1, 23, 45), T(2026, 1, 2, 0, 0),
        T(2026, 1, 2, 0, 15), T(2026, 1, 2, 0, 30),
    ]
    assert fires("cron(5/20 * * * ? *)", T(2026, 1, 1, 0, 0), T(2026, 1, 1, 1, 0)) == [
        T(2026, 1, 1, 0, 5), T(2026, 1, 1, 0, 25), T(2026, 1, 1, 0, 45)]


def test_weekdays_at_1800():
    # 2026-01-01 is a Thursday
    assert fires("cron(0 18 ? * MON-FRI *)", T(2026, 1, 1), T(2026, 1, 8)) == [
        T(2026, 1, 1, 18), T(2026, 1, 2, 18), T(2026, 1, 5, 18), T(2026, 1, 6, 18), T(2026, 1, 7, 18)]
    # numbers count from 1 = SUN: 2-6 is MON-FRI
    assert fires("cron(0 18 ? * 2-6 *)", T(2026, 1, 1), T(2026, 1, 8)) == fires(
        "cron(0 18 ? * MON-FRI *)", T(2026, 1, 1), T(2026, 1, 8))
    assert fires("cron(0 0 ? * 1 *)", T(2026, 1, 1), T(2026, 1, 12)) == [T(2026, 1, 4), T(2026, 1, 11)]
    assert fires("cron(0 0 ? * sat,sun *)", T(2026, 1, 1), T(2026, 1, 5)) == [T(2026, 1, 3), T(2026, 1, 4)]


def test_monthly_on_the_first():
    assert fires("cron(0 8 1 * ? *)", T(2025, 11, 15), T(2026, 3, 1, 8)) == [
        T(2025, 12, 1, 8), T(2026, 1, 1, 8), T(2026, 2, 1, 8), T(2026, 3, 1, 8)]


def test_last_day_of_month():
    assert fires("cron(0 12 L * ? *)", T(2024, 1, 1), T(2024, 5, 1)) == [
        T(2024, 1, 31, 12), T(2024, 2, 29, 12), T(2024, 3, 31, 12), T(2024, 4, 30, 12)]
    assert parse("cron(0 12 L * ? *)").next_after(T(2025, 2, 1)) == T(2025, 2, 28, 12)


def test_first_monday():
    assert fires("cron(0 9 ? * 2#1 *)", T(2026, 1, 1), T(2026, 6, 1)) == [
        T(2026, 1, 5, 9), T(2026, 2, 2, 9), T(2026, 3, 2, 9), T(2026, 4, 6, 9), T(2026, 5, 4, 9)]


def test_fifth_friday_skips_months_without_one():
    # Fridays in 2026: Jan 30 is the 5th Friday of January; February has four
    assert fires("cron(0 0 ? * FRI#5 *)", T(2026, 1, 1), T(2026, 6, 1)) == [T(2026, 1, 30), T(2026, 5, 29)]


def test_last_weekday_of_week_and_month():
    assert fires("cron(0 0 ? * 6L *)", T(2026, 1, 1), T(2026, 3, 1)) == [T(2026, 1, 30), T(2026, 2, 27)]
    assert fires("cron(0 0 ? * L *)", T(2026, 1, 1), T(2026, 1, 11)) == [T(2026, 1, 3), T(2026, 1, 10)]
    # LW: last weekday of the month; 2026-01-31 is a Saturday, 2026-05-31 a Sunday
    assert fires("cron(0 0 LW * ? *)", T(2026, 1, 1), T(2026, 6, 1)) == [
        T(2026, 1, 30), T(2026, 2, 27), T(2026, 3, 31), T(2026, 4, 30), T(2026, 5, 29)]


def test_nearest_weekday():
    # 2026: Jan 15 Thu; Feb 15 Sun -> Mon 16; Mar 15 Sun -> Mon 16; Aug 15 Sat -> Fri 14
    got = fires("cron(0 10 15W * ? *)", T(2026, 1, 1), T(2026, 9, 1))
    assert got[:3] == [T(2026, 1, 15, 10), T(2026, 2, 16, 10), T(2026, 3, 16, 10)]
    assert got[7] == T(2026, 8, 14, 10)
    # 1W never leaves the month: 2026-08-01 is a Saturday -> Monday the 3rd
    assert parse("cron(0 0 1W * ? *)").next_after(T(2026, 7, 31)) == T(2026, 8, 3)
    # 31W on 2026-05-31 (Sunday) -> Friday 29th; April has no 31st
    assert fires("cron(0 0 31W * ? *)", T(2026, 4, 1), T(2026, 6, 1)) == [T(2026, 5, 29)]


def test_year_ranges_and_exhaustion():
    s = parse("cron(0 0 1 JAN ? 2027-2029)")
    assert s.next_after(T(2026, 6, 1)) == T(2027, 1, 1)
    assert s.next_after(T(2029, 1, 1)) is None
    assert s.fires_between(T(2020, 1, 1), T(2100, 1, 1)) == [T(2027, 1, 1), T(2028, 1, 1), T(2029, 1, 1)]
    assert parse("cron(0 0 1 1 ? 2030,2032/10)").fires_between(T(2026, 1, 1), T(2060, 1, 1)) == [
        T(2030, 1, 1), T(2032, 1, 1), T(2042, 1, 1), T(2052, 1, 1)]
    assert parse("cron(0 0 1 1 ? *)").next_after(T(2199, 1, 1)) is None
    assert parse("cron(0 0 30 FEB ? *)").next_after(T(2026, 1, 1)) is None  # never fires


def test_lists_ranges_steps_and_names():
    s = parse("cron(0,30 9-17/4 ? JAN,JUL-AUG WED *)")
    assert s.fires_between(T(2026, 7, 1), T(2026, 7, 2)) == [
        T(2026, 7, 1, 9), T(2026, 7, 1, 9, 30), T(2026, 7, 1, 13), T(2026, 7, 1, 13, 30),
        T(2026, 7, 1, 17), T(2026, 7, 1, 17, 30)]
    assert s.next_after(T(2026, 8, 31)) == T(2027, 1, 6, 9)


def test_timezones_naive_is_utc_and_results_are_aware_utc():
    s = parse("cron(15 1 * * ? *)")
    assert s.next_after(datetime(2026, 3, 10)) == T(2026, 3, 10, 1, 15)
    plus2 = timezone(timedelta(hours=2))
    got = s.next_after(datetime(2026, 3, 10, 3, 0, tzinfo=plus2))  # 01:00 UTC
    assert got == T(2026, 3, 10, 1, 15) and got is not None and got.tzinfo is UTC


def test_fires_between_is_half_open_and_bounded():
    s = parse("cron(0 * * * ? *)")
    assert s.fires_between(T(2026, 1, 1, 0), T(2026, 1, 1, 2)) == [T(2026, 1, 1, 1), T(2026, 1, 1, 2)]
    assert s.fires_between(T(2026, 1, 1, 2), T(2026, 1, 1, 1)) == []
    with pytest.raises(UsageError, match="more than 5 times"):
        s.fires_between(T(2026, 1, 1), T(2026, 1, 2), limit=5)


@pytest.mark.parametrize("expression", [
    "cron(15 1 * * ? *)", "cron(0/15 * * * ? *)", "cron(0 18 ? * MON-FRI *)", "cron(0 12 L * ? *)",
    "cron(0 9 ? * 2#1 *)", "cron(0 10 15W * ? *)", "cron(7,59 */5 1-10/3 FEB-APR ? 2024-2025)",
    "cron(0 0 ? * 6L 2024)", "rate(7 minutes)",
])
def test_forward_and_backward_searches_agree(expression):
    s = parse(expression)
    end = T(2024, 2, 2) if expression in ("cron(0/15 * * * ? *)", "rate(7 minutes)") else T(2025, 6, 1)
    got = s.fires_between(T(2024, 1, 1), end)
    assert got and got == sorted(set(got))
    previous = s.latest_at_or_before(T(2024, 1, 1))
    for f in got:
        assert s.latest_at_or_before(f) == f
        assert s.latest_at_or_before(f - timedelta(microseconds=1)) == previous
        if previous is not None:
            assert s.next_after(previous) == f
            assert s.next_after(previous + (f - previous) / 2) == f
        previous = f


# ---- rate ------------------------------------------------------------------------------------
def test_rate_one_day_anchored_at_epoch_by_default():
    s = parse("rate(1 day)")
    assert isinstance(s, RateSchedule) and s.interval == timedelta(days=1)
    assert s.next_after(T(2026, 3, 10, 12)) == T(2026, 3, 11)
    assert s.next_after(T(2026, 3, 11)) == T(2026, 3, 12)
    assert s.latest_at_or_before(T(2026, 3, 11)) == T(2026, 3, 11)


def test_rate_five_minutes_with_anchor():
    assert fires("rate(5 minutes)", T(2026, 1, 1, 0, 2), T(2026, 1, 1, 0, 15)) == [
        T(2026, 1, 1, 0, 5), T(2026, 1, 1, 0, 10), T(2026, 1, 1, 0, 15)]
    s = parse("rate(5 minutes)", anchor=T(2026, 1, 1, 0, 2, 30))
    assert s.next_after(T(2025, 1, 1)) == T(2026, 1, 1, 0, 7, 30)  # the anchor itself is not a fire
    assert s.latest_at_or_before(T(2026, 1, 1, 0, 7, 29)) is None
    assert s.fires_between(T(2026, 1, 1), T(2026, 1, 1, 0, 20)) == [
        T(2026, 1, 1, 0, 7, 30), T(2026, 1, 1, 0, 12, 30), T(2026, 1, 1, 0, 17, 30)]
    assert parse("cron(0 0 * * ? *)", anchor=T(2026, 1, 1, 0, 2)).next_after(T(2026, 1, 1)) == T(2026, 1, 2)


@pytest.mark.parametrize("expression, interval", [
    ("rate(1 minute)", timedelta(minutes=1)), ("rate(2 hours)", timedelta(hours=2)),
    ("rate(1 hour)", timedelta(hours=1)), ("rate(7 days)", timedelta(days=7)),
    ("  rate( 10   minutes )  ", timedelta(minutes=10)),
])
def test_rate_units(expression, interval):
    s = parse(expression)
    assert isinstance(s, RateSchedule) and s.interval == interval


# ---- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize("expression, message", [
    ("rate(1 days)", "value of 1 takes the singular unit: rate(1 day)"),
    ("rate(5 minute)", "value above 1 takes the plural unit: rate(5 minutes)"),
    ("rate(0 minutes)", "rate value must be a positive integer, got '0'"),
    ("rate(-5 minutes)", "positive integer, got '-5'"),
    ("rate(1.5 hours)", "positive integer, got '1.5'"),
    ("rate(2 weeks)", "rate unit must be one of minute, minutes, hour, hours, day, days; got 'weeks'"),
    ("rate(5)", "got 1 field(s)"),
    ("cron(* * * * * *)", "one of day-of-month ('*') and day-of-week ('*') must be '?'"),
    ("cron(0 0 1 * MON *)", "one of day-of-month ('1') and day-of-week ('MON') must be '?'"),
    ("cron(0 0 ? * ? *)", "day-of-month and day-of-week cannot both be '?'"),
    ("cron(0 0 * * ?)", "6 fields (minutes hours day-of-month month day-of-week year); got 5"),
    ("cron(0 0 * * ? * *)", "got 7"),
    ("cron(60 0 * * ? *)", "minutes field: token '60': 60 is outside 0-59"),
    ("cron(0 24 * * ? *)", "hours field: token '24': 24 is outside 0-23"),
    ("cron(0 0 32 * ? *)", "day-of-month field: token '32': 32 is outside 1-31"),
    ("cron(0 0 * 13 ? *)", "month field: token '13': 13 is outside 1-12"),
    ("cron(0 0 * JANUARY ? *)", "month field: token 'JANUARY': 'JANUARY' is not a number 1-12 or JAN-DEC"),
    ("cron(0 0 ? * 0 *)", "day-of-week field: token '0': 0 is outside 1-7"),
    ("cron(0 0 ? * MON-SUNDAY *)", "day-of-week field: token 'MON-SUNDAY': 'SUNDAY' is not a number 1-7 or SUN-SAT"),
    ("cron(0 0 * * ? 1969)", "year field: token '1969': 1969 is outside 1970-2199"),
    ("cron(0 0 * * ? 2200)", "year field: token '2200': 2200 is outside 1970-2199"),
    ("cron(0 17-9 * * ? *)", "hours field: token '17-9': range runs backwards (17 > 9)"),
    ("cron(0/0 * * * ? *)", "minutes field: token '0/0': the increment after '/' must be a positive integer"),
    ("cron(0 0 ? * 1/2 *)", "day-of-week field: token '1/2': '/' is not allowed here"),
    ("cron(0 0 1,,2 * ? *)", "day-of-month field '1,,2' has an empty list item"),
    ("cron(? 0 1 * ? *)", "minutes field '?': '?' is allowed only in day-of-month or day-of-week"),
    ("cron(0 0 ?,1 * ? *)", "day-of-month field '?,1': '?' must stand alone"),
    ("cron(0 0 ? * 2#1,3#2 *)", "day-of-week field '2#1,3#2': '#' cannot be combined"),
    ("cron(0 0 ? * 2#6 *)", "day-of-week field: token '2#6': the instance after '#' must be 1-5"),
    ("cron(0 0 L,15 * ? *)", "day-of-month field 'L,15': 'L' and 'W' cannot be combined"),
    ("cron(0 0 L-3 * ? *)", "day-of-month field: token 'L-3': expected L, LW or <day>W"),
    ("cron(0 0 32W * ? *)", "day-of-month field: token '32W': 32 is outside 1-31"),
    ("cron(0 0 * * ? *", "is not a schedule expression"),
    ("at(2026-01-01T00:00:00)", "is not a schedule expression"),
    ("CRON(0 0 * * ? *)", "is not a schedule expression"),
])
def test_errors_name_the_field_and_token(expression, message):
    with pytest.raises(UsageError) as exc:
        parse(expression)
    assert message in str(exc.value)


# ---- scheduler -------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path):
    return SqliteStateStore(Database(tmp_path / "state.db", SCHEMA))


def test_scheduler_fires_once_per_tick(store):
    rules = {"daily": parse("cron(15 1 * * ? *)"), "quarter": parse("cron(0/15 * * * ? *)")}
    sched = Scheduler(rules, store, since=T(2026, 1, 1, 0, 0))
    assert sched.due(T(2026, 1, 1, 0, 0)) == []
    assert sched.due(T(2026, 1, 1, 0, 14, 59)) == []
    assert sched.due(T(2026, 1, 1, 0, 15)) == ["quarter"]
    assert sched.due(T(2026, 1, 1, 0, 15, 30)) == []  # same tick: not again
    assert sched.due(T(2026, 1, 1, 1, 15, 5)) == ["daily", "quarter"]
    assert sched.due(T(2026, 1, 1, 1, 16)) == []
    assert sched.last_fired("daily") == T(2026, 1, 1, 1, 15)
    assert sched.next_fire(T(2026, 1, 1, 1, 16)) == T(2026, 1, 1, 1, 30)
    item = store.get(SCHEDULES, "daily")
    assert item is not None and item.data == {"last": "2026-01-01T01:15:00+00:00",
                                              "expression": "cron(15 1 * * ? *)"}


def test_scheduler_new_rule_does_not_backfill(store):
    sched = Scheduler({"hourly": parse("rate(1 hour)")}, store)
    assert sched.due(T(2026, 1, 1, 10, 30)) == []  # first seen: no backfill of 10:00 or earlier
    assert sched.due(T(2026, 1, 1, 10, 59)) == []
    assert sched.due(T(2026, 1, 1, 11, 0)) == ["hourly"]


def test_scheduler_persists_across_instances_and_collapses_missed_ticks(store, tmp_path):
    rules = {"quarter": parse("cron(0/15 * * * ? *)")}
    assert Scheduler(rules, store, since=T(2026, 1, 1)).due(T(2026, 1, 1, 0, 15)) == ["quarter"]
    # "restart": a new store on the same file and a new scheduler
    store2 = SqliteStateStore(Database(tmp_path / "state.db", SCHEMA))
    again = Scheduler(rules, store2, since=T(2030, 1, 1))  # since only matters for unseen rules
    assert again.due(T(2026, 1, 1, 0, 20)) == []
    # down from 00:20 to 03:07: eleven ticks missed, one fire
    assert again.due(T(2026, 1, 1, 3, 7)) == ["quarter"]
    assert again.last_fired("quarter") == T(2026, 1, 1, 3, 0)
    assert again.due(T(2026, 1, 1, 3, 14)) == []
    assert again.due(T(2026, 1, 1, 3, 15)) == ["quarter"]


def test_two_schedulers_on_one_store_fire_each_tick_once(store, tmp_path):
    rules = {"minutely": parse("rate(1 minute)"), "daily": parse("cron(15 1 * * ? *)")}
    a = Scheduler(rules, store, since=T(2026, 1, 1))
    b = Scheduler(rules, SqliteStateStore(Database(tmp_path / "state.db", SCHEMA)), since=T(2026, 1, 1))
    fired: list[tuple[str, str]] = []
    for minute in range(1, 100):
        now = T(2026, 1, 1) + timedelta(minutes=minute, seconds=1)
        for who, sched in (("a", a), ("b", b)) if minute % 2 else (("b", b), ("a", a)):
            fired.extend((who, name) for name in sched.due(now))
    assert sum(1 for _, name in fired if name == "minutely") == 99
    assert [who for who, name in fired if name == "daily"] == ["a"]  # 01:15 is minute 75, odd: a first
    assert {who for who, _ in fired} == {"a", "b"}


def test_concurrent_schedulers_race_for_the_same_tick(tmp_path):
    path = tmp_path / "state.db"
    rules = {"quarter": parse("cron(0/15 * * * ? *)")}
    Scheduler(rules, SqliteStateStore(Database(path, SCHEMA)), since=T(2026, 1, 1)).due(T(2026, 1, 1))
    results: list[list[str]] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        sched = Scheduler(rules, SqliteStateStore(Database(path, SCHEMA)))
        barrier.wait()
        results.append(sched.due(T(2026, 1, 1, 0, 15)))

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[]] * 7 + [["quarter"]]
