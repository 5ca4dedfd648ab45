-- The notification outbox (issue 12): events written in the transaction of
-- the change that causes them, delivered by a worker that leases them.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL stands for
-- the zero time, as in 001. event is latch.Event as JSON, the body webhooks
-- receive; delivered is the routes that have taken it, a JSON array of
-- "sink:to" strings.

CREATE TABLE outbox (
	id          TEXT    NOT NULL PRIMARY KEY, -- latch.EventID, the idempotency key
	kind        TEXT    NOT NULL,
	state       TEXT    NOT NULL, -- pending, delivered, dead, dropped
	request_id  TEXT    NOT NULL, -- '' for none
	grant_id    TEXT    NOT NULL, -- '' for none
	event       TEXT    NOT NULL CHECK (json_type(event) = 'object'),
	created_at  INTEGER NOT NULL,
	due_at      INTEGER NOT NULL, -- when it may next be attempted
	lease_owner TEXT    NOT NULL, -- '' when not claimed
	lease_until INTEGER,          -- NULL when not claimed
	attempts    INTEGER NOT NULL,
	delivered   TEXT    NOT NULL CHECK (json_type(delivered) = 'array'),
	last_error  TEXT    NOT NULL,
	settled_at  INTEGER           -- when it was delivered, given up or dropped
) STRICT;

-- Claims read pending events in due order; an event leased elsewhere is
-- passed over by its lease_until.
CREATE INDEX outbox_due   ON outbox (due_at, id) WHERE state = 'pending';
CREATE INDEX outbox_grant ON outbox (grant_id, kind) WHERE grant_id != '' AND state = 'pending';

-- The request that opened a grant, known from the grant's creation (the
-- request learns its grant_id only once the grant is open), so that the
-- grant's events name the request's rule. '' for a direct grant.
ALTER TABLE grants ADD COLUMN request_id TEXT NOT NULL DEFAULT '';
