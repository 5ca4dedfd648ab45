-- latch's schema on PostgreSQL: the tables of the SQLite store's
-- migrations 001 to 010, in one step, in PostgreSQL's types.
--
-- Times are timestamptz (microseconds, read back in UTC); NULL stands for
-- the zero time. Lists are text[], '{}' when empty, never NULL. Maps are
-- jsonb objects. The audit entries' details and the outbox's events are
-- json, not jsonb, so that they are kept exactly as written.

-- Grants and their history.
CREATE TABLE grants (
	id           text    NOT NULL PRIMARY KEY,
	state        text    NOT NULL,
	region       text    NOT NULL,
	group_id     text    NOT NULL,
	protocol     text    NOT NULL,
	port_from    integer NOT NULL,
	port_to      integer NOT NULL,
	source       text    NOT NULL, -- canonical prefix text, e.g. 203.0.113.7/32; '' for none
	rule_id      text    NOT NULL, -- '' until the rule is known
	requester    text    NOT NULL,
	owner        text    NOT NULL, -- the requester's identity key; '' when no identity asked
	reason       text    NOT NULL,
	created_at   timestamptz,
	expires_at   timestamptz,
	ended_at     timestamptz,
	end_as       text    NOT NULL,
	attempts     integer NOT NULL,
	next_attempt timestamptz,
	last_error   text    NOT NULL,
	-- due_at is Grant.DueAt, written with every change so that Due and
	-- NextDue are one index range; NULL for grants the revoker leaves alone.
	due_at       timestamptz,
	version      integer NOT NULL,
	-- The request that opened the grant, known from the grant's creation;
	-- '' for a direct grant.
	request_id   text    NOT NULL,
	access       text    NOT NULL, -- '' for network access, or ssm
	target       text    NOT NULL, -- the instance, for ssm grants
	document     text    NOT NULL  -- latch's short document name
);

-- Lists are newest first, so the filter indexes end in (created_at, id).
CREATE INDEX grants_due       ON grants (due_at, id) WHERE due_at IS NOT NULL;
CREATE INDEX grants_created   ON grants (created_at, id);
CREATE INDEX grants_state     ON grants (state, created_at, id);
CREATE INDEX grants_opening   ON grants (region, group_id, protocol, port_from, port_to, source, created_at, id);
CREATE INDEX grants_rule      ON grants (rule_id, created_at, id);
CREATE INDEX grants_requester ON grants (requester, created_at, id);
CREATE INDEX grants_owner     ON grants (owner, created_at, id);

CREATE TABLE grant_events (
	grant_id text        NOT NULL REFERENCES grants (id),
	seq      integer     NOT NULL, -- 1, 2, … per grant
	at       timestamptz NOT NULL,
	state    text        NOT NULL,
	note     text        NOT NULL,
	PRIMARY KEY (grant_id, seq)
);

-- Requests for access and their reviews.
CREATE TABLE requests (
	id                  text    NOT NULL PRIMARY KEY,
	state               text    NOT NULL,
	-- Request.Requester
	requester_kind      text    NOT NULL,
	requester_subject   text    NOT NULL,
	requester_issuer    text    NOT NULL,
	requester_email     text    NOT NULL,
	requester_name      text    NOT NULL,
	requester_groups    text[]  NOT NULL,
	requester_key       text    NOT NULL, -- latch.Identity.Key
	-- Request.Target
	region              text    NOT NULL,
	instance_id         text    NOT NULL, -- '' when the group was named directly
	group_id            text    NOT NULL,
	tags                jsonb   NOT NULL CHECK (jsonb_typeof(tags) = 'object'),
	protocol            text    NOT NULL,
	port_from           integer NOT NULL,
	port_to             integer NOT NULL,
	source              text    NOT NULL, -- prefix text; '' for none
	duration_us         bigint  NOT NULL, -- Request.Duration in microseconds
	reason              text    NOT NULL,
	break_glass         boolean NOT NULL,
	rule                text    NOT NULL,
	approvals_needed    integer NOT NULL,
	approver_groups     text[]  NOT NULL,
	approver_users      text[]  NOT NULL,
	approver_principals text[]  NOT NULL,
	created_at          timestamptz,
	pending_until       timestamptz,
	decided_at          timestamptz,
	grant_id            text    NOT NULL, -- '' until access starts
	note                text    NOT NULL,
	version             integer NOT NULL,
	access              text    NOT NULL, -- '' for network access, or ssm
	document            text    NOT NULL
);

CREATE INDEX requests_created   ON requests (created_at, id);
CREATE INDEX requests_state     ON requests (state, created_at, id);
CREATE INDEX requests_requester ON requests (requester_key, created_at, id);
-- Find the request that opened a grant without scanning the history.
CREATE INDEX requests_grant     ON requests (grant_id) WHERE grant_id != '';

-- Reviews are append-only: UpdateRequest inserts the new ones and never
-- changes or deletes a stored one.
CREATE TABLE reviews (
	request_id text    NOT NULL REFERENCES requests (id),
	seq        integer NOT NULL, -- 1, 2, … per request, in the order given
	by_kind    text    NOT NULL,
	by_subject text    NOT NULL,
	by_issuer  text    NOT NULL,
	by_email   text    NOT NULL,
	by_name    text    NOT NULL,
	by_groups  text[]  NOT NULL,
	approve    boolean NOT NULL,
	reason     text    NOT NULL,
	at         timestamptz,
	PRIMARY KEY (request_id, seq)
);

-- One row per approver entry of a request: kind group (exact), user (in
-- lower case) or aws_principal (the pattern), so that listing the requests
-- someone may see is index lookups.
CREATE TABLE request_approvers (
	request_id text NOT NULL REFERENCES requests (id),
	kind       text NOT NULL CHECK (kind IN ('group', 'user', 'aws_principal')),
	value      text NOT NULL,
	PRIMARY KEY (kind, value, request_id)
);

-- The audit log: a hash chain of latch.AuditEntry, and its head.
--
-- id is the order entries were appended in (appends hold the head's row
-- lock, so ids are taken in seq order), and AuditEntries reads them in id
-- order rather than sorting by seq, so that an entry moved in the table
-- reads as out of order. Rows are never updated or deleted.
CREATE TABLE audit (
	id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	seq        bigint NOT NULL,
	at         timestamptz,
	actor      text   NOT NULL,
	action     text   NOT NULL,
	target     text   NOT NULL,
	grant_id   text   NOT NULL, -- '' for none
	request_id text   NOT NULL, -- '' for none
	details    json   NOT NULL CHECK (json_typeof(details) IN ('object', 'null')),
	prev_hash  text   NOT NULL, -- '' for the first entry
	hash       text   NOT NULL,
	signature  text   NOT NULL  -- '' when unsigned
);

CREATE UNIQUE INDEX audit_seq   ON audit (seq);
CREATE INDEX        audit_at    ON audit (at);
CREATE INDEX        audit_actor ON audit (actor);
CREATE INDEX        audit_grant ON audit (grant_id) WHERE grant_id != '';

-- The head is kept apart from the entries and moved in the same
-- transaction as each append, so that deleting entries off the end shows.
-- signature is the base64 ed25519 signature of latch.AuditHead.Message,
-- '' when no key is configured.
CREATE TABLE audit_head (
	id        integer NOT NULL PRIMARY KEY CHECK (id = 1),
	seq       bigint  NOT NULL,
	hash      text    NOT NULL,
	signature text    NOT NULL
);

INSERT INTO audit_head (id, seq, hash, signature) VALUES (1, 0, '', '');

-- Keys used once (latch.Store.UseOnce): digests of accepted AWS identity
-- proofs, each kept until it could no longer be accepted anyway.
CREATE TABLE used_once (
	key   text        NOT NULL PRIMARY KEY,
	until timestamptz NOT NULL
);

CREATE INDEX used_once_until ON used_once (until);

-- The notification outbox: events written in the transaction of the
-- change that causes them, delivered by workers that lease them. event is
-- latch.Event as JSON, the body webhooks receive; delivered is the routes
-- that have taken it, as "sink:to".
CREATE TABLE outbox (
	id          text        NOT NULL PRIMARY KEY, -- latch.EventID, the idempotency key
	kind        text        NOT NULL,
	state       text        NOT NULL, -- pending, delivered, dead, dropped
	request_id  text        NOT NULL, -- '' for none
	grant_id    text        NOT NULL, -- '' for none
	event       json        NOT NULL CHECK (json_typeof(event) = 'object'),
	created_at  timestamptz NOT NULL,
	due_at      timestamptz NOT NULL, -- when it may next be attempted
	lease_owner text        NOT NULL, -- '' when not claimed
	lease_until timestamptz,          -- NULL when not claimed
	attempts    integer     NOT NULL,
	delivered   text[]      NOT NULL,
	last_error  text        NOT NULL,
	settled_at  timestamptz           -- when it was delivered, given up or dropped
);

CREATE INDEX outbox_due   ON outbox (due_at, id) WHERE state = 'pending';
CREATE INDEX outbox_grant ON outbox (grant_id, kind) WHERE grant_id != '' AND state = 'pending';

-- Where a chat sink posted each request's message, so that later events
-- edit it. route is "sink:to" as the policy names it (slack:#ops).
CREATE TABLE message_refs (
	request_id text    NOT NULL,
	route      text    NOT NULL,
	channel    text    NOT NULL,
	message_id text    NOT NULL,
	stage      integer NOT NULL, -- the EventKind.Stage of the event the message shows
	PRIMARY KEY (request_id, route)
);

-- The Session Manager sessions latch started for its grants.
CREATE TABLE ssm_sessions (
	id         text        NOT NULL PRIMARY KEY, -- Session Manager's SessionId
	grant_id   text        NOT NULL REFERENCES grants (id),
	region     text        NOT NULL,
	target     text        NOT NULL,
	document   text        NOT NULL,
	owner      text        NOT NULL, -- the ARN that started it
	reason     text        NOT NULL,
	started_at timestamptz NOT NULL,
	expires_at timestamptz,
	ended_at   timestamptz           -- NULL while latch believes it may be running
);

CREATE INDEX ssm_sessions_grant ON ssm_sessions (grant_id, started_at);
