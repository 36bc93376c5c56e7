"""A queue of training jobs (trainings and searches) that free GPUs take one by one.

Pure core: ``_state.py`` (jobs and transitions). Edges: ``_store.py`` (the file and its lock),
``_runner.py`` (``queue run``: start jobs as `lora-pipeline` processes, one per free GPU).
"""

from orchestrator.queue._state import Job, QueueState
from orchestrator.queue._store import QUEUE_FILE, QueueStore

__all__ = ["QUEUE_FILE", "Job", "QueueState", "QueueStore"]
