"""The schema of the last sopcoach without migrations (tables made by ``Base.metadata.create_all``).

Revision ID: 0001
Revises:
Create Date: 2026-12-07

A frozen copy of the tables as ``sopcoach.records.models`` had them then; never change it (a new
schema change is a new revision). On an empty database it creates every table. On a database made
before migrations it adopts what is there: the history of the models only ever added tables
(``lesson_progress`` and the five below were there from the start; ``releases``,
``question_reviews`` and ``certificates`` came next; ``web_sessions`` and ``page_kernels`` last)
and never changed a table's columns, so the tables such a database lacks are created, the others
kept with their rows. A table that lacks one of its columns is not a layout any sopcoach made: the
upgrade stops, changing nothing.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sopcoach.errors import RecordsError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

m = sa.MetaData()
sa.Table(
    "learners", m,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("team", sa.String(100)),
    sa.Column("cohort", sa.String(100)),
    sa.Column("code_salt", sa.String(64), nullable=False),
    sa.Column("code_hash", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
)
sa.Table(
    "login_throttle", m,
    sa.Column("learner_id", sa.String(64), primary_key=True),
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("blocked_until", sa.DateTime()),
)
sa.Table(
    "audit_events", m,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(), nullable=False),
    sa.Column("learner_id", sa.String(64)),
    sa.Column("attempt_id", sa.Integer()),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
)
sa.Table(
    "attempts", m,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=False, index=True),
    sa.Column("exam_id", sa.String(64), nullable=False),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("seed", sa.Integer(), nullable=False),
    sa.Column("question_ids", sa.JSON(), nullable=False),
    sa.Column("option_orders", sa.JSON(), nullable=False),
    sa.Column("bank_digest", sa.String(64), nullable=False),
    sa.Column("playbook_hash", sa.String(64), nullable=False),
    sa.Column("playbook_version", sa.String(64), nullable=False),
    sa.Column("started_at", sa.DateTime(), nullable=False),
    sa.Column("deadline_at", sa.DateTime(), nullable=False),
    sa.Column("closed_at", sa.DateTime()),
    sa.Column("score_num", sa.Integer()),
    sa.Column("score_den", sa.Integer()),
    sa.Column("percent", sa.String(8)),
    sa.Column("passed", sa.Boolean()),
    sa.Column("report", sa.JSON()),
    sa.UniqueConstraint("learner_id", "exam_id", "number"),
)
sa.Table(
    "answers", m,
    sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id"), primary_key=True),
    sa.Column("question_id", sa.String(100), primary_key=True),
    sa.Column("response", sa.JSON()),
    sa.Column("flagged", sa.Boolean(), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("answered_at", sa.DateTime(), nullable=False),
)
sa.Table(
    "lesson_progress", m,
    sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), primary_key=True),
    sa.Column("lesson_id", sa.String(64), primary_key=True),
    sa.Column("opened_at", sa.DateTime(), nullable=False),
    sa.Column("practice", sa.JSON(), nullable=False),
    sa.Column("completed_at", sa.DateTime()),
)
sa.Table(
    "releases", m,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("label", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("note", sa.Text(), nullable=False),
    sa.Column("playbook_hash", sa.String(64), nullable=False, index=True),
    sa.Column("clause_hashes", sa.JSON(), nullable=False),
    sa.Column("snapshot", sa.JSON(), nullable=False),
    sa.Column("changed", sa.JSON(), nullable=False),
)
sa.Table(
    "question_reviews", m,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("question_id", sa.String(100), nullable=False, index=True),
    sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.id"), nullable=False),
    sa.Column("clauses", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("flagged_at", sa.DateTime(), nullable=False),
    sa.Column("confirmed_at", sa.DateTime()),
    sa.Column("confirmed_by", sa.String(100)),
    sa.UniqueConstraint("question_id", "release_id"),
)
sa.Table(
    "certificates", m,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=False, index=True),
    sa.Column("attempt_id", sa.Integer(), sa.ForeignKey("attempts.id"), nullable=False),
    sa.Column("exam_id", sa.String(64), nullable=False),
    sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.id")),
    sa.Column("playbook_version", sa.String(64), nullable=False),
    sa.Column("issued_at", sa.DateTime(), nullable=False),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
    sa.Column("score_num", sa.Integer(), nullable=False),
    sa.Column("score_den", sa.Integer(), nullable=False),
    sa.Column("percent", sa.String(8), nullable=False),
    sa.Column("clauses", sa.JSON(), nullable=False),
    sa.Column("clause_hashes", sa.JSON(), nullable=False),
    sa.Column("replaces", sa.String(32)),
    sa.Column("superseded_by", sa.String(32)),
    sa.Column("revoked_at", sa.DateTime()),
    sa.Column("revoked_reason", sa.Text(), nullable=False),
)
sa.Table(
    "web_sessions", m,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("expires_at", sa.DateTime(), nullable=False),
    sa.Column("ended_at", sa.DateTime()),
    sa.Column("ended_reason", sa.String(40), nullable=False),
)
sa.Table(
    "page_kernels", m,
    sa.Column("kernel_id", sa.String(64), primary_key=True),
    sa.Column("learner_id", sa.String(64), sa.ForeignKey("learners.id"), nullable=False, index=True),
    sa.Column("session_hash", sa.String(64), nullable=False),
    sa.Column("bound_at", sa.DateTime(), nullable=False),
)


def upgrade() -> None:
    bind = op.get_bind()
    have = sa.inspect(bind)
    for table in m.sorted_tables:  # referenced tables first
        if not have.has_table(table.name):
            table.create(bind)  # with its indexes
            continue
        missing = [c.name for c in table.columns if c.name not in {x["name"] for x in have.get_columns(table.name)}]
        if missing:
            raise RecordsError(f"table {table.name} lacks column(s) {', '.join(missing)}: no sopcoach made this "
                               "layout; nothing was changed")


def downgrade() -> None:
    for table in reversed(m.sorted_tables):
        op.drop_table(table.name)
