"""The bus bench phase's pure parts: its plans, how it splits subscribers and mutations
over the API processes, what it expects delivered, and the rows it prints."""

from __future__ import annotations

import random
from typing import Any

from bench import bus

CUSTOMERS = [f"c{i}" for i in range(7)]
SKUS = [f"sku{i}" for i in range(5)]


def test_split_deals_in_turn_and_evenly() -> None:
    parts = bus.split(list(range(11)), 2)
    assert parts == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9]]
    assert bus.split(list(range(9)), 1) == [list(range(9))]
    sizes = [len(p) for p in bus.split(list(range(1000)), 2)]
    assert sizes == [500, 500]


def test_latency_plans() -> None:
    own, plan, fan, broadcast = bus.latency_plans(CUSTOMERS, SKUS, 20, 30, 4, random.Random(1))
    assert own == [CUSTOMERS[i % 7] for i in range(20)]
    assert len(plan) == 30 and all(customer in own for customer, _ in plan)
    assert fan == [CUSTOMERS[0]] * 20
    assert [c for c, _ in broadcast] == [CUSTOMERS[0]] * 4
    for _, lines in plan + broadcast:
        skus = [sku for sku, _ in lines]
        assert 1 <= len(lines) <= 3 and len(set(skus)) == len(skus)
        assert set(skus) <= set(SKUS) and all(qty == 1 for _, qty in lines)
    again = bus.latency_plans(CUSTOMERS, SKUS, 20, 30, 4, random.Random(1))
    assert again == (own, plan, fan, broadcast)  # the same run to run


def test_expected_deliveries_counts_each_subscription_of_placed_orders() -> None:
    subscriptions = ["a", "a", "b", "c"]
    plan = [("a", [("s", 1)]), ("b", [("s", 1)]), ("c", [("s", 1)]), ("a", [("s", 1)])]
    assert bus.expected_deliveries(subscriptions, plan, [True, True, True, True]) == 6
    assert bus.expected_deliveries(subscriptions, plan, [True, False, True, False]) == 3
    assert bus.expected_deliveries(["b"] * 1000, plan[1:2], [True]) == 1000


def _figure(p99: float, delivered: int = 10) -> dict[str, Any]:
    return {"p50_ms": p99 / 2, "p99_ms": p99, "delivered": delivered, "expected": 10}


def test_rows_one_per_figure_and_side_beside_the_one_process() -> None:
    sides = {
        "1 process": {"one_each": _figure(40.0), "broadcast": _figure(60.0)},
        "2 processes, projectors inline in one": {
            "one_each": _figure(30.0),
            "broadcast": _figure(45.0, delivered=9),
        },
        "2 processes + shopfront project": {
            "one_each": _figure(80.0),
            "broadcast": _figure(50.0),
        },
    }
    rows = bus.rows({"sides": sides}, 1000)
    assert [r.figure for r in rows] == [
        "mutation -> subscriber delivery, 1,000 subscribers over 2 processes, projectors "
        "inline in one",
        "mutation -> subscriber delivery, 1,000 subscribers over 2 processes + shopfront project",
        "same, each event broadcast to all 1,000 subscribers over 2 processes, projectors "
        "inline in one",
        "same, each event broadcast to all 1,000 subscribers over 2 processes + shopfront project",
    ]
    assert rows[0].ours == "p50 15.0 ms, p99 30.0 ms (10/10 delivered)"
    assert rows[0].baseline == "p50 20.0 ms, p99 40.0 ms (10/10 delivered) (1 process)"
    assert [r.ratio for r in rows] == ["0.75", "2.00", "0.75", "0.83"]
    assert all(r.target == "p99 <= 50 ms" for r in rows)
    # Met: everything delivered and p99 within 50 ms (50.0 itself counts).
    assert [r.met for r in rows] == [True, False, False, True]


def test_rows_of_a_failed_or_absent_phase() -> None:
    assert bus.rows(None, 1000) == []
    (row,) = bus.rows({"error": "RuntimeError: boom"}, 1000)
    assert "boom" in row.ours and row.met is False
