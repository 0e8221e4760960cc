"""Task objects own every label decision: targets, loss, decoding, metrics, plots and state."""

from __future__ import annotations

from typing import Any, Sequence

from earshot.errors import ConfigError
from earshot.tasks.base import Crop, Task
from earshot.tasks.classification import ClassificationTask
from earshot.tasks.detection import DetectionTask
from earshot.tasks.tagging import TaggingTask

TASKS: dict[str, type] = {"classification": ClassificationTask, "tagging": TaggingTask,
                          "detection": DetectionTask}


def create_task(name: str, labels: Sequence[str], **kwargs: Any) -> Task:
    """Build a task by name (``classification``, ``tagging`` or ``detection``) over ``labels``."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; known: {sorted(TASKS)}")
    return TASKS[name](labels, **kwargs)


__all__ = ["TASKS", "ClassificationTask", "Crop", "DetectionTask", "TaggingTask", "Task", "create_task"]
