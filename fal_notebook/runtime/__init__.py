"""The job runtime: the manager (the only one that decides a job's state), the steps that follow a job, cancel.

Inside, imports point one way: ``outcome``, ``tracker``, ``ledger`` (what the others share) ← ``steps``,
``cancel`` (report through the ledger) and ``job`` (asks its host) ← ``manager`` (owns them all).

``Job`` and ``JobGroup`` live here because the manager makes them; users reach them through ``fal_notebook.jobs``.
"""

from .job import Job, JobGroup, JobSnapshot, as_completed, wait_all
from .manager import JobManager, default_origin
from .outcome import error_from_dict, error_to_dict

__all__ = ["JobManager", "Job", "JobGroup", "JobSnapshot", "as_completed", "wait_all", "error_to_dict",
           "error_from_dict", "default_origin"]
