-- The audit head's signature: the standard base64 ed25519 signature of
-- latch.AuditHead.Message ("latch-audit-head\nSEQ\nHASH"), written in the
-- same transaction as each append, '' when no key is configured.
--
-- Without it, whoever could write the file could delete entries off the end
-- and move the head back onto the last one left, and every entry would
-- still verify. A head written before this migration stays unsigned, and
-- 'latch audit verify --public-key' says so, until the next append signs it.

ALTER TABLE audit_head ADD COLUMN signature TEXT NOT NULL DEFAULT '';
