"""registerCustomer: anyone may sign up, and gets a customer token back."""

from __future__ import annotations

import datetime as dt

import strawberry
from graphql import GraphQLError

from api.graphql.commands import CONSISTENCY_DOC, run_command, token_of
from api.graphql.context import Info
from api.graphql.customers.types import Customer
from api.graphql.limits.estimates import list_field
from api.graphql.types import UserError
from api.middleware.security import retry_after
from domain import commands as c

CUSTOMER_TOKEN_TTL = dt.timedelta(days=30)


@strawberry.input
class RegisterCustomerInput:
    email: str
    name: str


@strawberry.type
class RegisterCustomerPayload:
    customer: Customer | None
    token: str | None
    user_errors: list[UserError] = list_field(1)  # few: one per bad input field
    consistency_token: str | None = strawberry.field(default=None, description=CONSISTENCY_DOC)


@strawberry.type
class RegisterCustomerMutation:
    @strawberry.mutation(description="Anyone: create a customer account.")
    async def register_customer(
        self, info: Info, input: RegisterCustomerInput
    ) -> RegisterCustomerPayload:
        # Every sign-up is a new identity with a full rate-limit bucket: capped per address.
        wait = info.context.services.rate_limits.registration(info.context.address)
        if wait:
            seconds = retry_after(wait)
            raise GraphQLError(
                f"Too many sign-ups from this address: retry in {seconds} s",
                extensions={"code": "RATE_LIMITED", "retryAfter": seconds},
            )
        result = await run_command(
            info.context.services,
            c.RegisterCustomer(info.context.actor, email=input.email, name=input.name),
        )
        if isinstance(result, list):
            return RegisterCustomerPayload(customer=None, token=None, user_errors=result)
        customer_id = result.entity_id
        row = await info.context.customers.load(customer_id)
        token = info.context.services.authenticator.sign(
            customer_id, "customer", CUSTOMER_TOKEN_TTL
        )
        return RegisterCustomerPayload(
            customer=None if row is None else Customer.from_row(row),
            token=token,
            user_errors=[],
            consistency_token=token_of(result),
        )
