"""The job store's schema as a list of migrations; ``PRAGMA user_version`` counts the ones applied.

Append a new list of statements to change the schema; never edit a released one.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "JSON_COLUMNS"]

# Columns holding JSON text.
JSON_COLUMNS = frozenset({"arguments", "logs", "result", "error", "files", "tags", "options", "estimate"})

_V1 = [
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,                -- local short hex id
        endpoint TEXT NOT NULL,             -- full endpoint id as submitted
        arguments TEXT NOT NULL,            -- JSON; data URIs replaced by {"$data_uri": sha256, "path": ...}
        state TEXT NOT NULL,                -- JobState
        request_id TEXT UNIQUE,             -- fal's id; NULL until fal accepted the request
        status_url TEXT,
        response_url TEXT,
        cancel_url TEXT,
        queue_position INTEGER,
        logs TEXT,                          -- JSON list of the newest log lines
        created_at TEXT NOT NULL,           -- UTC ISO 8601 with offset
        updated_at TEXT NOT NULL,
        submitted_at TEXT,
        started_at TEXT,
        finished_at TEXT,
        inference_time REAL,
        result TEXT,                        -- JSON, fal's payload (NULL until fetched)
        error TEXT,                         -- JSON {class, message, error_type, detail, status_code}
        files TEXT,                         -- JSON list of local output paths
        origin TEXT NOT NULL,               -- notebook path, "cli" or "script"
        tags TEXT,                          -- JSON list
        options TEXT,                       -- JSON: priority, webhook_url, start_timeout, hint, validate
        owner TEXT,                         -- host:pid:nonce of the process following the job
        lease_until REAL,                   -- epoch seconds
        submit_attempts INTEGER NOT NULL DEFAULT 0,
        result_fetches INTEGER NOT NULL DEFAULT 0
    )
    """,
    "CREATE INDEX jobs_state ON jobs (state)",
    "CREATE INDEX jobs_origin_created ON jobs (origin, created_at)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)",
]

# The price before paying: {"model", "unit_price", "unit", "quantity", "total", "currency"} (NULL: no price known).
_ESTIMATE = ["ALTER TABLE jobs ADD COLUMN estimate TEXT"]

# Which jobs a notebook cell submitted, so running the cell again (Restart & Run All) can show them instead of
# paying for the same request twice. The key hashes the cell (the frontend's id, else its source) and the request.
_CELL_RUNS = [
    """
    CREATE TABLE cell_runs (
        origin TEXT NOT NULL,               -- the notebook (same as jobs.origin)
        cell_key TEXT NOT NULL,             -- sha256 hex of the cell and the request it made
        job_ids TEXT NOT NULL,              -- JSON list of local job ids, in submission order
        created_at TEXT NOT NULL,
        PRIMARY KEY (origin, cell_key)
    )
    """,
]

# Judging and lineage: a rating (1..5), one label and a note per job; which stored jobs' results a job used.
_JUDGE_AND_LINEAGE = [
    "ALTER TABLE jobs ADD COLUMN rating INTEGER",
    "ALTER TABLE jobs ADD COLUMN label TEXT",
    "ALTER TABLE jobs ADD COLUMN note TEXT",
    "CREATE INDEX jobs_label ON jobs (label)",
    """
    CREATE TABLE lineage (
        child TEXT NOT NULL,                -- the job that used a result
        parent TEXT NOT NULL,               -- the job whose result it used (or that it re-ran)
        kind TEXT NOT NULL,                 -- "input" (a result as an input) or "rerun"
        PRIMARY KEY (child, parent)
    )
    """,
    "CREATE INDEX lineage_parent ON lineage (parent)",
]

MIGRATIONS: list[list[str]] = [_V1, _ESTIMATE, _CELL_RUNS, _JUDGE_AND_LINEAGE]
