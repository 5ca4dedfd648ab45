package storetest

import (
	"testing"

	"github.com/latchdev/latch"
)

func testMessageRefs(t *testing.T, open func(t *testing.T) latch.Store) {
	s, ok := open(t).(latch.MessageRefs)
	if !ok {
		t.Fatal("the store does not implement latch.MessageRefs")
	}
	ctx := t.Context()
	id := latch.NewRequestID()
	ops := latch.Route{Sink: latch.SinkSlack, To: "#ops"}
	sec := latch.Route{Sink: latch.SinkSlack, To: "#sec"}

	if _, err := s.MessageRef(ctx, id, ops); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Fatalf("MessageRef before any save: err = %v, want ENOTFOUND", err)
	}
	first := latch.MessageRef{RequestID: id, Route: ops, Channel: "C0000001", MessageID: "1700000000.000001", Stage: 1}
	if err := s.SaveMessageRef(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got, err := s.MessageRef(ctx, id, ops); err != nil || got != first {
		t.Fatalf("MessageRef = %+v, %v; want %+v", got, err, first)
	}
	if _, err := s.MessageRef(ctx, id, sec); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Fatalf("MessageRef of another route: err = %v, want ENOTFOUND", err)
	}
	if _, err := s.MessageRef(ctx, latch.NewRequestID(), ops); latch.ErrorCode(err) != latch.ENOTFOUND {
		t.Fatalf("MessageRef of another request: err = %v, want ENOTFOUND", err)
	}

	again := first
	again.MessageID, again.Stage = "1700000000.000002", 3
	if err := s.SaveMessageRef(ctx, again); err != nil {
		t.Fatalf("saving a second ref for one request and route: %v", err)
	}
	if got, _ := s.MessageRef(ctx, id, ops); got != again {
		t.Fatalf("after a second save MessageRef = %+v, want %+v", got, again)
	}

	if err := s.SaveMessageRef(ctx, latch.MessageRef{RequestID: id, Route: sec}); latch.ErrorCode(err) != latch.EINVALID {
		t.Fatalf("SaveMessageRef without channel and message: err = %v, want EINVALID", err)
	}
}
