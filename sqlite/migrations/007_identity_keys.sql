-- People are keyed by identity (issue 10): kind, issuer and subject, the
-- subject in lower case (latch.Identity.Key). Email and name are kept as
-- attributes. Requests may name approvers as users and AWS principal
-- patterns besides groups, and request_approvers indexes every approver
-- entry so that listing the requests someone may see is index lookups,
-- not a scan of the history.

ALTER TABLE grants ADD COLUMN owner TEXT NOT NULL DEFAULT ''; -- the requester's key; '' when no identity asked
CREATE INDEX grants_owner ON grants (owner, created_at, id);

ALTER TABLE requests ADD COLUMN requester_key   TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN requester_email TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN requester_name  TEXT NOT NULL DEFAULT '';
ALTER TABLE requests ADD COLUMN approver_users      TEXT NOT NULL DEFAULT '[]' CHECK (json_type(approver_users) = 'array');
ALTER TABLE requests ADD COLUMN approver_principals TEXT NOT NULL DEFAULT '[]' CHECK (json_type(approver_principals) = 'array');
ALTER TABLE reviews  ADD COLUMN by_email TEXT NOT NULL DEFAULT '';
ALTER TABLE reviews  ADD COLUMN by_name  TEXT NOT NULL DEFAULT '';

-- Rows written before keys existed: the key as latch.Identity.Key makes it
-- (an Identity Center session recorded earlier keeps its ARN as key).
UPDATE requests SET requester_key = requester_kind || '|' || requester_issuer || '|' || lower(requester_subject);
UPDATE grants SET owner = (SELECT r.requester_key FROM requests r WHERE r.grant_id = grants.id)
	WHERE EXISTS (SELECT 1 FROM requests r WHERE r.grant_id = grants.id);

-- A request still pending was asked, and perhaps reviewed, by identities
-- keyed as they were then (OIDC logins by email, by default). The same
-- people now arrive keyed by sub, and latch could not tell them apart:
-- the requester could approve their own request, or a reviewer approve
-- twice. Such requests time out now, saying why; people ask again.
UPDATE requests SET state = 'timed-out',
	decided_at = CAST(ROUND((julianday('now') - 2440587.5) * 86400000000) AS INTEGER),
	note = 'timed out by the upgrade to identity keys: people are now keyed by OIDC sub, not email; ask again'
	WHERE state = 'pending';

DROP INDEX requests_requester;
CREATE INDEX requests_requester ON requests (requester_key, created_at, id);

-- One row per approver entry of a request: kind group (exact), user (in
-- lower case) or aws_principal (the pattern).
CREATE TABLE request_approvers (
	request_id TEXT NOT NULL REFERENCES requests (id),
	kind       TEXT NOT NULL CHECK (kind IN ('group', 'user', 'aws_principal')),
	value      TEXT NOT NULL,
	PRIMARY KEY (kind, value, request_id)
) STRICT, WITHOUT ROWID;

INSERT OR IGNORE INTO request_approvers (request_id, kind, value)
	SELECT r.id, 'group', j.value FROM requests r, json_each(r.approver_groups) j;
