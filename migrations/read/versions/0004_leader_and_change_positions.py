"""projection leader row; order_changes.position, so other processes can tail the changes

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 09:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "projection_leader",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.add_column("order_changes", sa.Column("position", Position, nullable=True))
    op.create_index("ix_order_changes_position", "order_changes", ["position"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_order_changes_position", table_name="order_changes")
    with op.batch_alter_table("order_changes") as batch:
        batch.drop_column("position")
    op.drop_table("projection_leader")
