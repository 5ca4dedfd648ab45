package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/latchdev/latch"
)

var _ latch.MessageRefs = (*Store)(nil)

// SaveMessageRef implements latch.MessageRefs.
func (s *Store) SaveMessageRef(ctx context.Context, ref latch.MessageRef) error {
	if ref.RequestID == "" || ref.Route.Sink == "" || ref.Route.To == "" || ref.Channel == "" || ref.MessageID == "" {
		return latch.Invalidf("message", "a message ref needs a request, a route, a channel and a message ID")
	}
	err := s.inTx(ctx, func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO message_refs (request_id, route, channel, message_id, stage) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (request_id, route) DO UPDATE SET channel = excluded.channel, message_id = excluded.message_id, stage = excluded.stage`,
			ref.RequestID, ref.Route.String(), ref.Channel, ref.MessageID, ref.Stage)
		return err
	})
	if err != nil {
		return fmt.Errorf("save message ref of %s: %w", ref.RequestID, translate(err))
	}
	return nil
}

// MessageRef implements latch.MessageRefs.
func (s *Store) MessageRef(ctx context.Context, id latch.RequestID, route latch.Route) (latch.MessageRef, error) {
	ref := latch.MessageRef{RequestID: id, Route: route}
	err := s.readRow(ctx, `SELECT channel, message_id, stage FROM message_refs WHERE request_id = ? AND route = ?`,
		id, route.String()).Scan(&ref.Channel, &ref.MessageID, &ref.Stage)
	if errors.Is(err, sql.ErrNoRows) {
		return latch.MessageRef{}, latch.Errorf(latch.ENOTFOUND, "no message for request %s at %s", id, route)
	}
	if err != nil {
		return latch.MessageRef{}, fmt.Errorf("get message ref of %s: %w", id, translate(err))
	}
	return ref, nil
}
