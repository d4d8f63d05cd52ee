-- Messages per UTC hour next to the quarter hours of migration 0031 (issue 16): a year of
-- day buckets reads a quarter of the rows. A local day of a zone whose offset is whole hours
-- (New York, Berlin) is a whole number of hours; one of +05:30 or +05:45 (Kolkata, Kathmandu)
-- starts inside an hour, and its ends are read from `message_counts` (store::analytics::split).
-- Same columns and rules as `message_counts`: `slot` is the hour's start in Unix seconds (a
-- multiple of 3600), the nil author for a message without one, notes not counted, kept when a
-- contact is erased.
CREATE TABLE message_counts_hourly (
    tenant_id      BLOB NOT NULL REFERENCES tenants (id),
    slot           INTEGER NOT NULL,
    connection_id  BLOB NOT NULL,
    direction      TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    author_id      BLOB NOT NULL,
    n              INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, slot, connection_id, direction, author_id)
) WITHOUT ROWID;

-- Every message in or out adds one to its hour's count (also before 1970).
CREATE TRIGGER messages_counts_hourly AFTER INSERT ON messages
FOR EACH ROW WHEN NEW.direction IN ('inbound', 'outbound')
BEGIN
    INSERT INTO message_counts_hourly (tenant_id, slot, connection_id, direction, author_id, n)
    VALUES (NEW.tenant_id,
            unixepoch(NEW.created_at) - ((unixepoch(NEW.created_at) % 3600) + 3600) % 3600,
            NEW.connection_id, NEW.direction, COALESCE(NEW.author_id, zeroblob(16)), 1)
    ON CONFLICT (tenant_id, slot, connection_id, direction, author_id) DO UPDATE SET n = n + 1;
END;

-- The counts so far, from the quarter hours (which keep the messages of erased contacts).
INSERT INTO message_counts_hourly (tenant_id, slot, connection_id, direction, author_id, n)
SELECT c.tenant_id, c.slot - ((c.slot % 3600) + 3600) % 3600, c.connection_id, c.direction,
    c.author_id, SUM(c.n)
FROM message_counts c
GROUP BY 1, 2, 3, 4, 5;
