"""The firewall's book while a fill settles: a streamed position and a pending fill are never added up."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from src.firewall.book import Book
from src.firewall.decisions import DecisionLog
from src.firewall.rules import Authority, Situation, judge
from src.tws.orders import Contract, PlaceOrder

DAY, ACCOUNT = date(2026, 12, 7), "DU1"
AUTHORITY = Authority(DAY, "A", True, frozenset({"SPY"}), frozenset(), 10, 3, False, "0" * 64)
SITUATION = Situation(DAY, True, True, frozenset({ACCOUNT}))


def order(order_id: int, action: str, quantity: int) -> PlaceOrder:
    spy = Contract(0, "SPY", "STK", "", "0.0", "", "", "SMART", "", "USD", "", "", "", "")
    return PlaceOrder(order_id, spy, (), action, str(quantity), "MKT", "", "", "DAY", ACCOUNT, "", True, 0, False, ())


def sold_5_of_10() -> Book:
    """Held 10 SPY (snapshot); SELL 5 allowed and filled; no snapshot since the fill."""
    book = Book()
    book.positions_snapshot(book.tick(), {(ACCOUNT, "SPY"): 10.0})
    verdict = judge(order(1, "SELL", 5), 1, AUTHORITY, book, SITUATION)
    assert verdict.allowed
    book.place(1, 1, ACCOUNT, verdict.legs, 5.0, DAY, 0.0)
    book.status(1, 1, "Filled", 5.0)
    return book


def test_a_streamed_update_that_holds_the_fill_is_not_counted_twice() -> None:
    book = sold_5_of_10()
    book.set_position(ACCOUNT, "SPY", 5.0)  # the stream already says 5
    assert book.positions_of(ACCOUNT, "SPY") == (5.0,)
    assert not judge(order(2, "BUY", 10), 1, AUTHORITY, book, SITUATION).allowed  # 5 + 10 > 10
    assert judge(order(3, "BUY", 5), 1, AUTHORITY, book, SITUATION).allowed


def test_a_stale_stream_and_the_settled_value_must_both_pass() -> None:
    book = sold_5_of_10()
    book.set_position(ACCOUNT, "SPY", 10.0)  # an update from before the fill, delivered late
    assert set(book.positions_of(ACCOUNT, "SPY")) == {5.0, 10.0}
    assert not judge(order(2, "BUY", 1), 1, AUTHORITY, book, SITUATION).allowed  # 10 + 1 > 10 is possible
    book.positions_snapshot(book.tick(), {(ACCOUNT, "SPY"): 5.0})  # asked after the fill: settles it
    assert book.positions_of(ACCOUNT, "SPY") == (5.0,)
    assert judge(order(3, "BUY", 5), 1, AUTHORITY, book, SITUATION).allowed


def test_a_combo_repeating_a_leg_counts_both_legs() -> None:
    from src.tws.orders import ComboLeg
    book = Book()
    book.con_ids["SPY"] = 756733
    bag = Contract(0, "SPY", "BAG", "", "", "", "", "SMART", "", "USD", "", "", "", "")
    legs = (ComboLeg(756733, "1", "BUY", "SMART"), ComboLeg(756733, "1", "BUY", "SMART"))
    combo = PlaceOrder(1, bag, legs, "BUY", "6", "MKT", "", "", "DAY", ACCOUNT, "", True, 0, False, ())
    assert not judge(combo, 1, AUTHORITY, book, SITUATION).allowed  # 12 SPY


def test_a_decision_json_cannot_hold_is_an_oserror_so_the_order_is_refused(tmp_path: Path) -> None:
    journal = DecisionLog(tmp_path / "decisions.jsonl")
    with pytest.raises(OSError, match="cannot be written as JSON"):
        journal.write({"order_id": 1 << 70})
    journal.write({"order_id": 7})
    assert (tmp_path / "decisions.jsonl").read_text().count("\n") == 1
