-- Keys used once (latch.Store.UseOnce): the SHA-256 digests of the AWS
-- identity proofs the server has accepted, each kept until the proof
-- could no longer be accepted anyway, so that replicas sharing the file
-- accept each proof once. Never the proof itself.
--
-- until is INTEGER microseconds since the Unix epoch, UTC, as in 001.

CREATE TABLE used_once (
	key   TEXT    NOT NULL PRIMARY KEY,
	until INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX used_once_until ON used_once (until);
