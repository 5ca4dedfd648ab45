-- Reserved: version 5 belongs to another branch of issue 10, which adds
-- its own 005 migration. This no-op keeps 006 from leaving a gap (versions
-- must run without one) until that branch is merged; delete this file then.
SELECT 1;
