-- Where a chat sink posted each request's message (issue 12, Slack), so
-- that later events edit it. route is "sink:to" as the policy names it
-- (slack:#ops); channel and message_id are the destination's IDs.

CREATE TABLE message_refs (
	request_id TEXT NOT NULL,
	route      TEXT NOT NULL,
	channel    TEXT NOT NULL,
	message_id TEXT NOT NULL,
	stage      INTEGER NOT NULL, -- the EventKind.Stage of the event the message shows
	PRIMARY KEY (request_id, route)
) STRICT;
