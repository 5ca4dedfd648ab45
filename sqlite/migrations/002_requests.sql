-- Requests for access, their reviews, and grants listed by requester.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL stands for
-- the zero time, as in 001. Lists and maps are JSON text: an empty one is
-- '[]' or '{}', never NULL, and reads back as nil.

CREATE TABLE requests (
	id                TEXT    NOT NULL PRIMARY KEY,
	state             TEXT    NOT NULL,
	-- Request.Requester
	requester_kind    TEXT    NOT NULL,
	requester_subject TEXT    NOT NULL,
	requester_issuer  TEXT    NOT NULL,
	requester_groups  TEXT    NOT NULL CHECK (json_type(requester_groups) = 'array'),
	-- Request.Target
	region            TEXT    NOT NULL,
	instance_id       TEXT    NOT NULL, -- '' when the group was named directly
	group_id          TEXT    NOT NULL,
	tags              TEXT    NOT NULL CHECK (json_type(tags) = 'object'),
	protocol          TEXT    NOT NULL,
	port_from         INTEGER NOT NULL,
	port_to           INTEGER NOT NULL,
	source            TEXT    NOT NULL, -- prefix text, e.g. 203.0.113.7/32; '' for none
	duration_us       INTEGER NOT NULL, -- Request.Duration in microseconds
	reason            TEXT    NOT NULL,
	break_glass       INTEGER NOT NULL CHECK (break_glass IN (0, 1)),
	rule              TEXT    NOT NULL,
	approvals_needed  INTEGER NOT NULL,
	approver_groups   TEXT    NOT NULL CHECK (json_type(approver_groups) = 'array'),
	created_at        INTEGER,
	pending_until     INTEGER,
	decided_at        INTEGER,
	grant_id          TEXT    NOT NULL, -- '' until access starts
	note              TEXT    NOT NULL,
	version           INTEGER NOT NULL
) STRICT;

-- Lists are newest first, so the filter indexes end in (created_at, id).
CREATE INDEX requests_created   ON requests (created_at, id);
CREATE INDEX requests_state     ON requests (state, created_at, id);
CREATE INDEX requests_requester ON requests (requester_subject, created_at, id);

-- Reviews are append-only: UpdateRequest inserts the new ones and never
-- changes or deletes a stored one.
CREATE TABLE reviews (
	request_id TEXT    NOT NULL REFERENCES requests (id),
	seq        INTEGER NOT NULL, -- 1, 2, … per request, in the order given
	by_kind    TEXT    NOT NULL,
	by_subject TEXT    NOT NULL,
	by_issuer  TEXT    NOT NULL,
	by_groups  TEXT    NOT NULL CHECK (json_type(by_groups) = 'array'),
	approve    INTEGER NOT NULL CHECK (approve IN (0, 1)),
	reason     TEXT    NOT NULL,
	at         INTEGER,
	PRIMARY KEY (request_id, seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX grants_requester ON grants (requester, created_at, id);
