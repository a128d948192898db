"""Attempts store the params drawn for their template questions (``attempts.variants``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

A nullable JSON column: question id -> the params drawn for that template when the attempt
started (see :mod:`sopcoach.certification.variants`). Attempts made before hold ``NULL``: they
drew no template, so they are scored and shown exactly as before.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("variants", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("variants")
