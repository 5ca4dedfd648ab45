package sqlite

import (
	"context"

	"github.com/latchdev/latch"
)

// Placeholder until requests are stored; see migrations.

// CreateRequest is not implemented yet.
func (s *Store) CreateRequest(ctx context.Context, r latch.Request) (latch.Request, error) {
	return latch.Request{}, latch.Errorf(latch.EINTERNAL, "requests are not stored yet")
}

// Request is not implemented yet.
func (s *Store) Request(ctx context.Context, id latch.RequestID) (latch.Request, error) {
	return latch.Request{}, latch.Errorf(latch.EINTERNAL, "requests are not stored yet")
}

// Requests is not implemented yet.
func (s *Store) Requests(ctx context.Context, f latch.RequestFilter) ([]latch.Request, error) {
	return nil, latch.Errorf(latch.EINTERNAL, "requests are not stored yet")
}

// UpdateRequest is not implemented yet.
func (s *Store) UpdateRequest(ctx context.Context, r latch.Request) (latch.Request, error) {
	return latch.Request{}, latch.Errorf(latch.EINTERNAL, "requests are not stored yet")
}
