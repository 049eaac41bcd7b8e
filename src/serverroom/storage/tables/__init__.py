"""ORM tables, one module per resource. Importing this package registers them all."""

from serverroom.storage.db import Base
from serverroom.storage.tables import accounts  # noqa: F401
from serverroom.storage.tables import conversations, responses  # noqa: F401
from serverroom.storage.tables import batches, files  # noqa: F401

__all__ = ["Base"]
