package sqlite

import (
	"context"

	"github.com/latchdev/latch"
)

// Placeholder until the audit log is stored.

// AppendAudit is not implemented yet.
func (s *Store) AppendAudit(ctx context.Context, e latch.AuditEntry, sign func(string) string) (latch.AuditEntry, error) {
	return e, nil
}

// AuditEntries is not implemented yet.
func (s *Store) AuditEntries(ctx context.Context, f latch.AuditFilter) ([]latch.AuditEntry, error) {
	return nil, nil
}

// AuditHead is not implemented yet.
func (s *Store) AuditHead(ctx context.Context) (int64, string, error) { return 0, "", nil }
