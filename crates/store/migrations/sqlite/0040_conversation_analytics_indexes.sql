-- PostgreSQL's migration 0040 narrows its two analytics indexes on `conversations`, because
-- there every message's update of its conversation writes an entry into every index. SQLite
-- rewrites only the indexes whose columns changed, so the covering indexes of 0031 cost it
-- nothing per message and stay (its analytics read them without visiting the rows).
SELECT 1;
