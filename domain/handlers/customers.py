"""Handlers of the customer commands: register."""

from __future__ import annotations

import uuid

from domain import commands as c
from domain import events as e
from domain import model
from domain.unit_of_work import UnitOfWork


def register_customer(uow: UnitOfWork, cmd: c.RegisterCustomer) -> str:
    email = model.normalize_email(cmd.email)
    name = model.clean_text("name", cmd.name)
    if uow.email_taken(email):
        raise model.DomainError("EMAIL_TAKEN", "That email is already registered", "email")
    customer_id = str(uuid.uuid4())
    uow.add_customer(customer_id, email, name)
    uow.events.record(f"customer-{customer_id}", 1, e.CustomerRegistered(customer_id, email, name))
    return customer_id
