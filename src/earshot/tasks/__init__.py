"""Task objects own targets, loss and decoding."""

from earshot.tasks.classification import TASKS, ClassificationTask, create_task

__all__ = ["TASKS", "ClassificationTask", "create_task"]
