package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// changedChannel is the NOTIFY channel on which every Store announces its
// writes, so that the others sharing the database (replicas) see them at
// once: the leader's revoker learns of a grant another replica made
// without waiting for its next re-read, and the notification worker of an
// event another replica wrote.
const changedChannel = "latch_changed"

// listener carries writes between Store values on one database: announce
// sends one NOTIFY for any number of writes since the last (a burst of
// writes makes a few notifications, not one each), and listen closes
// Changed on every notification another Store sent.
type listener struct {
	id     string        // this Store's payload, so it ignores its own
	kick   chan struct{} // a write to announce; capacity 1
	cancel context.CancelFunc
	done   chan struct{}
}

func (s *Store) startListener() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	s.ln = &listener{id: hex.EncodeToString(b[:]), kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.ln.done)
		var wg sync.WaitGroup
		wg.Go(func() { s.announceLoop(ctx) })
		s.listenLoop(ctx)
		wg.Wait()
	}()
}

func (s *Store) stopListener() {
	if s.ln == nil {
		return
	}
	// A write not yet announced (a one-shot command's last) is announced
	// before the connections close.
	select {
	case <-s.ln.kick:
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.pgNotify(ctx)
		cancel()
	default:
	}
	s.ln.cancel()
	<-s.ln.done
}

// announce asks for a NOTIFY, without waiting for it.
func (s *Store) announce() {
	if s.ln == nil {
		return
	}
	select {
	case s.ln.kick <- struct{}{}:
	default: // one is pending already; it covers this write too
	}
}

func (s *Store) announceLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.ln.kick:
		}
		if err := s.pgNotify(ctx); err != nil && ctx.Err() == nil {
			// Others still re-read on their timers.
			s.log.Debug("announce a change to other replicas", "err", err)
		}
	}
}

// pgNotify sends the NOTIFY that tells the other Stores of this one's
// writes.
func (s *Store) pgNotify(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `SELECT pg_notify($1, $2)`, changedChannel, s.ln.id)
	return err
}

// listenLoop holds a connection of its own LISTENing, reconnecting with
// backoff, until ctx ends.
func (s *Store) listenLoop(ctx context.Context) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("listen for other replicas' changes", "err", err, "retry_in", wait.String())
		s.notify() // a change may have gone unheard while disconnected
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(wait*2, 10*time.Second)
	}
}

func (s *Store) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.db.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+changedChannel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != s.ln.id {
			s.notify()
		}
	}
}
