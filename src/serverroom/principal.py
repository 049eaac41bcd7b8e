"""Who is calling: the project (and key) a request acts for.

Every stored object belongs to a project, and every request is admitted and billed through
``Metering``. Until authentication is configured, every request acts for the default project.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PROJECT = "proj_default"


@dataclass(frozen=True)
class Principal:
    project_id: str
    key_id: str | None = None
    is_admin: bool = False
    # an admin acting in a session rather than with a bearer key: the dashboard (signed in
    # with ``key_id``) or the CLI; the audit log names the user and where they came from
    session_user: str | None = None
    session_ip: str | None = None
