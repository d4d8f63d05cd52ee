-- The address of a login name's last counted failure, so that the password spraying detection
-- counts every name one address fails against, unknown ones included, without a row of its own
-- per attempt (an unauthenticated flood writes nothing more than the throttle already does).
ALTER TABLE login_throttle ADD COLUMN last_failure_ip text;
CREATE INDEX login_throttle_ip_idx ON login_throttle (last_failure_ip, last_failure_at);
