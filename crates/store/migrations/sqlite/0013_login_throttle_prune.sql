-- Login throttle rows are pruned once their window has passed (login_throttle::prune runs on
-- every recorded failure), so the prune needs the rows by age rather than a scan of the table.
CREATE INDEX login_throttle_last_failure_idx ON login_throttle (last_failure_at);
