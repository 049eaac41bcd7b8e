"""The generation layer: one stream of neutral results that every endpoint renders."""

from serverroom.generation.results import (
    CallArguments,
    CallClosed,
    CallOpened,
    ChoiceDone,
    Finish,
    Result,
    TextOut,
    ToolCall,
)
from serverroom.generation.run import Generation, Job, call_id, fold, results

__all__ = [
    "CallArguments",
    "CallClosed",
    "CallOpened",
    "ChoiceDone",
    "Finish",
    "Generation",
    "Job",
    "Result",
    "TextOut",
    "ToolCall",
    "call_id",
    "fold",
    "results",
]
