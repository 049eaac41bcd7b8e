"""Tables of the accounts package: projects, project API keys, admin keys, the usage ledger.

Keys are stored only as SHA-256 hashes plus a redacted display value. Times are unix seconds.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from serverroom.storage.db import Base


class ProjectRow(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    archived_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    pinned_tier: Mapped[str | None] = mapped_column(String(32), nullable=True)
    spend_usd: Mapped[float] = mapped_column(Float, default=0.0)
    monthly_spend_limit_usd: Mapped[float | None] = mapped_column(Float, nullable=True)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(256), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redacted_value: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class UsageRow(Base):
    __tablename__ = "usage_ledger"
    __table_args__ = (Index("ix_usage_ledger_project_time", "project_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str] = mapped_column(String(256))
    endpoint: Mapped[str] = mapped_column(String(128))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    batch: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger, index=True)


class AuditLogRow(Base):
    """One change to the organization: who made it, to what, when (``accounts.audit``)."""

    __tablename__ = "audit_logs"
    __table_args__ = (Index("ix_audit_logs_time", "effective_at"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    effective_at: Mapped[int] = mapped_column(BigInteger)
    actor_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # set for a change made in a session (dashboard, CLI): who signed in, and from where
    actor_user: Mapped[str | None] = mapped_column(String(128), nullable=True)
    actor_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    resource_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
