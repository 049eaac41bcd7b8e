"""ORM tables, one module per resource. Importing this package registers them all."""

from serverroom.storage.db import Base
from serverroom.storage.tables import (  # noqa: F401
    accounts,
    batches,
    chat,
    containers,
    conversations,
    files,
    responses,
    vector_stores,
    webhooks,
)

__all__ = ["Base"]
