-- Find the request that opened a grant (for counting a requester's open
-- grants under a rule) without scanning their history.
CREATE INDEX requests_grant ON requests (grant_id) WHERE grant_id != '';
