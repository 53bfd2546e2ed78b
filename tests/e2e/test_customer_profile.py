"""The profile screen beyond zero: ``me { orderCount lifetimeSpendCents }`` after a
customer places, pays, cancels, ships and delivers orders.

What counts (projections/screens/customer_profile.py): ``orderCount`` is every order
placed, cancelled ones included; ``lifetimeSpendCents`` is what was paid, less refunds
of paid orders that were cancelled. An unpaid cancelled order costs nothing.
"""

from __future__ import annotations

from .client import Api, LiveAppLike

ME = "{ me { id orderCount lifetimeSpendCents } }"


async def _me(api: Api, token: str) -> tuple[int, int]:
    me = (await api.data(ME, token=token))["me"]
    return me["orderCount"], me["lifetimeSpendCents"]


def _ok(payload: dict[str, object]) -> None:
    assert payload["userErrors"] == [], payload


async def test_order_count_and_lifetime_spend_follow_every_order(
    api: Api, live_app: LiveAppLike
) -> None:
    staff = live_app.staff_token
    mug = (await api.add_product(staff, price_cents=1250, stock=100))["sku"]
    tee = (await api.add_product(staff, price_cents=1999, stock=100))["sku"]
    token, customer_id = await api.register_customer("Profile customer")
    other, _ = await api.register_customer("Someone else")
    assert await _me(api, token) == (0, 0)

    # Paid: counts, and its total is spent.
    paid = await api.place_order(token, [(mug, 2), (tee, 1)])  # 2 x 1250 + 1999 = 4499
    assert paid["totalCents"] == 4499, paid
    assert await _me(api, token) == (1, 0)  # placed, not paid yet
    _ok(await api.pay(token, paid["id"]))
    assert await _me(api, token) == (1, 4499)

    # Paid then cancelled: counts; the refund takes its spend back.
    refunded = await api.place_order(token, [(tee, 3)])  # 5997
    _ok(await api.pay(token, refunded["id"]))
    assert await _me(api, token) == (2, 4499 + 5997)
    _ok(await api.cancel(token, refunded["id"]))
    assert await _me(api, token) == (2, 4499)

    # Cancelled unpaid, and placed only: count, spend nothing.
    dropped = await api.place_order(token, [(mug, 1)])
    _ok(await api.cancel(token, dropped["id"]))
    await api.place_order(token, [(mug, 4)])
    assert await _me(api, token) == (4, 4499)

    # Paid, shipped and delivered: spent once, whatever happens after payment.
    delivered = await api.place_order(token, [(mug, 1)])  # 1250
    _ok(await api.pay(token, delivered["id"]))
    _ok(await api.ship(staff, delivered["id"]))
    _ok(await api.deliver(staff, delivered["id"]))
    assert await _me(api, token) == (5, 4499 + 1250)

    # Someone else's orders change nothing here.
    theirs = await api.place_order(other, [(tee, 1)])
    _ok(await api.pay(other, theirs["id"]))
    assert await _me(api, token) == (5, 4499 + 1250)
    assert await _me(api, other) == (1, 1999)
    me = (await api.data(ME, token=token))["me"]
    assert me["id"] == customer_id
