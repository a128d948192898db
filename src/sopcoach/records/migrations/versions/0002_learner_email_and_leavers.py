"""Learners get an e-mail address (for reminders) and a deactivation time (for leavers).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

Both columns are nullable: every learner already enrolled stays active and has no e-mail until a
roster gives one (``sopcoach enroll --roster``).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("learners") as batch:
        batch.add_column(sa.Column("email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("deactivated_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("learners") as batch:
        batch.drop_column("deactivated_at")
        batch.drop_column("email")
