package ec2sim

import (
	"math/rand/v2"
	"slices"
	"time"
)

// Faults describes the failures the server injects. Rates are fractions
// of the affected requests, from 0 to 1; they are tried in the order
// listed, and their sum should not exceed 1.
type Faults struct {
	// ThrottleRate is the fraction answered RequestLimitExceeded (HTTP 503)
	// without acting.
	ThrottleRate float64
	// ServerErrorRate is the fraction answered InternalError (HTTP 500)
	// without acting.
	ServerErrorRate float64
	// LostResponseRate is the fraction that act and are then answered
	// InternalError, as if the response were lost on the way back. It is
	// how a test makes a client retry a call that already took effect.
	LostResponseRate float64
	// Latency is added before each affected request is handled.
	Latency time.Duration
	// Actions limits the faults to these actions (EC2's, or CloudTrail's
	// LookupEvents); empty means all.
	Actions []string
	// Limit stops the failures (not the latency) after this many; 0 means
	// no limit. Limit 1 with a rate of 1 fails exactly the next request,
	// so a test can let the SDK's retry through.
	Limit int
	// Seed starts the sequence of draws, so a sequence of requests meets
	// the same faults on every run.
	Seed int64
}

type faultKind int

const (
	faultNone faultKind = iota
	faultThrottle
	faultServerError
	faultLostResponse
)

// SetFaults replaces the injected faults; the zero Faults turns them off.
// It takes effect for requests that arrive after it returns.
func (s *Server) SetFaults(f Faults) {
	f.Actions = slices.Clone(f.Actions)
	s.lock()
	defer s.unlock()
	s.faults = f
	s.faultRand = newFaultRand(f.Seed)
	s.faulted = 0
}

// CurrentFaults returns the faults being injected.
func (s *Server) CurrentFaults() Faults {
	s.lock()
	defer s.unlock()
	f := s.faults
	f.Actions = slices.Clone(f.Actions)
	return f
}

func newFaultRand(seed int64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), 0x5eed))
}

// drawFault decides the fate of one request. It draws from the seeded
// source only for affected requests that could fail, so unrelated traffic
// does not shift which requests fail. Caller holds s.mu.
func (s *Server) drawFault(action string) (faultKind, time.Duration) {
	f := s.faults
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) {
		return faultNone, 0
	}
	if f.ThrottleRate <= 0 && f.ServerErrorRate <= 0 && f.LostResponseRate <= 0 {
		return faultNone, f.Latency
	}
	if f.Limit > 0 && s.faulted >= f.Limit {
		return faultNone, f.Latency
	}
	kind := faultNone
	switch u := s.faultRand.Float64(); {
	case u < f.ThrottleRate:
		kind = faultThrottle
	case u < f.ThrottleRate+f.ServerErrorRate:
		kind = faultServerError
	case u < f.ThrottleRate+f.ServerErrorRate+f.LostResponseRate:
		kind = faultLostResponse
	}
	if kind != faultNone {
		s.faulted++
	}
	return kind, f.Latency
}
