-- Session Manager access (issue 13): a grant that opens no rule but lets
-- its requester start Session Manager sessions to one instance, and the
-- sessions latch started for it. access is '' for grants and requests
-- made before this migration, which means network access.

ALTER TABLE grants ADD COLUMN access TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN target TEXT NOT NULL DEFAULT '';   -- the instance, for ssm grants
ALTER TABLE grants ADD COLUMN document TEXT NOT NULL DEFAULT ''; -- latch's short document name

ALTER TABLE requests ADD COLUMN access TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN document TEXT NOT NULL DEFAULT '';

CREATE TABLE ssm_sessions (
	id         TEXT    NOT NULL PRIMARY KEY, -- Session Manager's SessionId
	grant_id   TEXT    NOT NULL REFERENCES grants (id),
	region     TEXT    NOT NULL,
	target     TEXT    NOT NULL,
	document   TEXT    NOT NULL,
	owner      TEXT    NOT NULL, -- the ARN that started it
	reason     TEXT    NOT NULL,
	started_at INTEGER NOT NULL,
	expires_at INTEGER,
	ended_at   INTEGER             -- NULL while latch believes it may be running
) STRICT;

CREATE INDEX ssm_sessions_grant ON ssm_sessions (grant_id, started_at);
