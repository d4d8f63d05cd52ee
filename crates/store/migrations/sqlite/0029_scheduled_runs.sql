-- One row per occurrence of a scheduled job (the backup schedule) that a node claimed: the
-- primary key lets exactly one node of a cluster run each occurrence, and the latest row tells
-- a node that starts whether an occurrence was missed while every node was down. Rows carry
-- no tenant data, so the table needs no tenant isolation.
CREATE TABLE scheduled_runs (
    job        TEXT NOT NULL,
    due_at     TEXT NOT NULL,
    node       TEXT NOT NULL,
    claimed_at TEXT NOT NULL,
    PRIMARY KEY (job, due_at)
);
