"""What every mutation does: run one command, then read the result back from the read
model once the projectors have caught up with the command's events."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from api.graphql.types import UserError
from api.http import consistency
from domain.bus import CommandResult
from domain.commands import Command
from domain.model import DomainError

if TYPE_CHECKING:
    from api.bootstrap import Services

log = logging.getLogger("shopfront.mutations")


async def run_command(services: Services, command: Command) -> CommandResult | list[UserError]:
    """The command's result once the read models have its events (or the wait timed out),
    or its refusal as user errors (both executors of mutations call this)."""
    try:
        result = await services.bus.execute(command)
    except DomainError as error:
        return [UserError.from_domain(error)]
    if result.position is not None:
        caught_up = await services.runner.wait_for(
            result.position, services.settings.read_your_writes_timeout
        )
        if not caught_up:
            log.warning("read models behind position %d after a command", result.position)
    return result


CONSISTENCY_DOC = (
    "Send it as header Shopfront-Consistency on a later request to read at least this write."
)
EXPECTED_DOC = "Refuse (userError VERSION_CONFLICT) unless the order is still at this version."


def token_of(result: CommandResult) -> str | None:
    return None if result.position is None else consistency.encode(result.position)


def not_found(field: str, what: str) -> list[UserError]:
    return [UserError(field=field, message=f"No such {what}", code="NOT_FOUND")]
