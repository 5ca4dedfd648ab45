-- Leases elect the one replica that runs the revoker and the sweeps
-- (latch.Leases). until is the holder's clock; token is the fencing
-- token, advanced whenever the lease changes hands or is taken again after
-- it lapsed.
CREATE TABLE leases (
	name   text        NOT NULL PRIMARY KEY,
	holder text        NOT NULL,
	token  bigint      NOT NULL,
	until  timestamptz NOT NULL
);
