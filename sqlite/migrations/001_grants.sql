-- Grants and their history.
--
-- Times are INTEGER microseconds since the Unix epoch, UTC; NULL stands for
-- the zero time. To read one by hand: datetime(expires_at / 1000000, 'unixepoch').

CREATE TABLE grants (
	id           TEXT    NOT NULL PRIMARY KEY,
	state        TEXT    NOT NULL,
	region       TEXT    NOT NULL,
	group_id     TEXT    NOT NULL,
	protocol     TEXT    NOT NULL,
	port_from    INTEGER NOT NULL,
	port_to      INTEGER NOT NULL,
	source       TEXT    NOT NULL, -- canonical prefix text, e.g. 203.0.113.7/32
	rule_id      TEXT    NOT NULL, -- '' until the rule is known
	requester    TEXT    NOT NULL,
	reason       TEXT    NOT NULL,
	created_at   INTEGER,
	expires_at   INTEGER,
	ended_at     INTEGER,
	end_as       TEXT    NOT NULL,
	attempts     INTEGER NOT NULL,
	next_attempt INTEGER,
	last_error   TEXT    NOT NULL,
	-- due_at is Grant.DueAt, written with every change so that Due and
	-- NextDue are one index range; NULL for grants the revoker leaves alone.
	due_at       INTEGER,
	version      INTEGER NOT NULL
) STRICT;

-- Lists are newest first, so the filter indexes end in (created_at, id).
CREATE INDEX grants_due     ON grants (due_at, id) WHERE due_at IS NOT NULL;
CREATE INDEX grants_created ON grants (created_at, id);
CREATE INDEX grants_state   ON grants (state, created_at, id);
CREATE INDEX grants_opening ON grants (region, group_id, protocol, port_from, port_to, source, created_at, id);
CREATE INDEX grants_rule    ON grants (rule_id, created_at, id);

CREATE TABLE grant_events (
	grant_id TEXT    NOT NULL REFERENCES grants (id),
	seq      INTEGER NOT NULL, -- 1, 2, … per grant
	at       INTEGER NOT NULL,
	state    TEXT    NOT NULL,
	note     TEXT    NOT NULL,
	PRIMARY KEY (grant_id, seq)
) STRICT, WITHOUT ROWID;
