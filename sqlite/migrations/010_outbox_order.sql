-- A request's events are delivered in order (sqlite/outbox.go, inTurn):
-- an event waits while an earlier pending one of its request exists.
CREATE INDEX outbox_request ON outbox (request_id) WHERE request_id != '' AND state = 'pending';
