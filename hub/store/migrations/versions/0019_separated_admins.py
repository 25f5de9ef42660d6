"""三权分立 (issue 42): people who were `admin` become `sysadmin` (accounts and units, not the audit trail);
the security administrator (`secadmin`) and the audit administrator (`auditor`) are accounts of their own that a
`secadmin` (or a machine's admin key) makes. Keys keep `admin`: it is a machine's role now.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE users SET role = 'sysadmin' WHERE role = 'admin'")


def downgrade() -> None:
    op.execute("UPDATE users SET role = 'admin' WHERE role IN ('sysadmin', 'secadmin', 'auditor')")
