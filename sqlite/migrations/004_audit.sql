-- The audit log: a hash chain of latch.AuditEntry, and its head.
--
-- id is the order entries were appended in, and AuditEntries reads them in
-- id order rather than sorting by seq, so that an entry moved in the file
-- (rows' contents swapped, say) reads as out of order instead of being put
-- back silently. For an untouched log, id order is seq order.
--
-- Rows are never updated or deleted; latch.VerifyAudit shows whoever did.
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL stands for
-- the zero time, as in 001.

CREATE TABLE audit (
	id         INTEGER NOT NULL PRIMARY KEY,
	seq        INTEGER NOT NULL,
	at         INTEGER,
	actor      TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	target     TEXT    NOT NULL,
	grant_id   TEXT    NOT NULL, -- '' for none
	request_id TEXT    NOT NULL, -- '' for none
	details    TEXT    NOT NULL CHECK (json_type(details) IN ('object', 'null')),
	prev_hash  TEXT    NOT NULL, -- '' for the first entry
	hash       TEXT    NOT NULL,
	signature  TEXT    NOT NULL  -- '' when unsigned
) STRICT;

CREATE UNIQUE INDEX audit_seq   ON audit (seq);
CREATE INDEX        audit_at    ON audit (at);
CREATE INDEX        audit_actor ON audit (actor);
CREATE INDEX        audit_grant ON audit (grant_id) WHERE grant_id != '';

-- The head is kept apart from the entries and moved in the same
-- transaction as each append, so that deleting entries off the end shows.
CREATE TABLE audit_head (
	id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	seq  INTEGER NOT NULL,
	hash TEXT    NOT NULL
) STRICT;

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');
