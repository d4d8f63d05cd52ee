-- PostgreSQL's migration 0039 rewrites its row-level security policies so that they are
-- evaluated once per statement instead of once per row. SQLite has no row-level security
-- (the repositories bind the scope's tenant into every statement); nothing changes here.
SELECT 1;
