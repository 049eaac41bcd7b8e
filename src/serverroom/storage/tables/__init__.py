"""ORM tables, one module per resource. Importing this package registers them all."""

from serverroom.storage.db import Base

__all__ = ["Base"]
