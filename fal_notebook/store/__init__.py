"""The durable job store: one SQLite row per job (records, schema and migrations, kept inputs, legacy import).

Imports only the standard library and the base modules: no httpx, no IPython.
"""

from .db import JobStore
from .records import UNFINISHED, JobRecord, JobState, new_job_id, new_owner, utcnow

__all__ = ["JobStore", "JobRecord", "JobState", "UNFINISHED", "new_job_id", "new_owner", "utcnow"]
