"""The generation layer: one stream of neutral results that every endpoint renders.

The package's names are those its modules list in ``__all__``: the result types
(``generation.results``) and what runs a generation (``generation.run``).
"""

from serverroom.generation.results import *  # noqa: F403
from serverroom.generation.run import *  # noqa: F403
