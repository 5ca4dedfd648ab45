package ec2sim

// The seam between the SSM API (ssm_sessions.go) and a session's data
// channel, which lives in another package (ec2sim/datachannel) so that the
// API needs no WebSocket code. The data channel learns of sessions through
// LookupSession, reaches instances through DialTarget, and reports the
// end of a session through EndSession; the API tells it of a
// TerminateSession through DataChannel.Terminate.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"

	"github.com/latchdev/latch/ec2sim/datachannel"
)

// dataChannelPrefix is the path of sessions' StreamUrls, as on
// ssmmessages.REGION.amazonaws.com.
const dataChannelPrefix = "/v1/data-channel/"

// DataChannel is the other side of a session's StreamUrl.
type DataChannel interface {
	// ServeHTTP serves /v1/data-channel/{SessionId}.
	http.Handler
	// Terminate is called when the session was terminated with the
	// TerminateSession API: the channel should close. It is called
	// without the server's lock, so it may call the server.
	Terminate(sessionID string)
}

// ChannelSession is what the data channel needs to know about a session.
type ChannelSession struct {
	ID       string
	Token    string // the current TokenValue; ResumeSession replaces it
	Region   string
	Target   string // instance ID
	Document string
	// Parameters are the document's parameters with its defaults filled
	// in (AWS-StartSSHSession's portNumber is "22" when not given).
	Parameters map[string][]string
}

// dataChannel is Options.DataChannel, or else the simulator's own agent
// (package datachannel), made on first use.
func (s *Server) dataChannel() DataChannel {
	if s.opts.DataChannel != nil {
		return s.opts.DataChannel
	}
	s.channelOnce.Do(func() { s.channel = datachannel.New(channelSessions{s}, s.log()) })
	return s.channel
}

// serveDataChannel hands a StreamUrl request to the data channel.
func (s *Server) serveDataChannel(w http.ResponseWriter, r *http.Request) {
	s.dataChannel().ServeHTTP(w, r)
}

// channelSessions is the server as the datachannel package sees it.
type channelSessions struct{ s *Server }

func (c channelSessions) LookupSession(id string) (datachannel.Session, bool) {
	ss, ok := c.s.LookupSession(id)
	return datachannel.Session(ss), ok
}

func (c channelSessions) EndSession(id string) { c.s.EndSession(id) }

func (c channelSessions) DialTarget(ctx context.Context, region, instanceID string, port int) (net.Conn, error) {
	return c.s.DialTarget(ctx, region, instanceID, port)
}

// LookupSession returns an active session by ID, for the data channel to
// check the token and learn its target; false if there is no such session
// or it has ended.
func (s *Server) LookupSession(id string) (ChannelSession, bool) {
	s.lock()
	defer s.unlock()
	ss, ok := s.sessions[id]
	if !ok || !ss.active() {
		return ChannelSession{}, false
	}
	return ChannelSession{
		ID: ss.id, Token: ss.token, Region: ss.region, Target: ss.target, Document: ss.document,
		Parameters: cloneParams(ss.params),
	}, true
}

// EndSession marks a session terminated from the agent's side: the client
// sent the TerminateSession flag, or the channel closed for good. It does
// not call DataChannel.Terminate, since the channel is the one telling,
// and does nothing to a session that has already ended or does not exist.
func (s *Server) EndSession(id string) {
	s.lock()
	defer s.unlock()
	if ss, ok := s.sessions[id]; ok && ss.active() {
		ss.status, ss.end = statusTerminated, s.now().UTC()
	}
}

// DialTarget connects to port on an instance for a session's agent, with
// Options.Dial. It refuses instances that do not exist, are not running,
// or whose agent is not online, and every connection when Options.Dial is
// nil. Options.Dial is called without the server's lock.
func (s *Server) DialTarget(ctx context.Context, region, instanceID string, port int) (net.Conn, error) {
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("ec2sim: dial %s: port %d is out of range", instanceID, port)
	}
	s.lock()
	err := s.targetConnected(region, instanceID)
	s.unlock()
	if err != nil {
		return nil, fmt.Errorf("ec2sim: dial %s:%d: %w", instanceID, port, err)
	}
	s.lock()
	dial := s.dial
	if dial == nil {
		dial = s.opts.Dial
	}
	s.unlock()
	if dial == nil {
		return nil, fmt.Errorf("ec2sim: dial %s:%d: %w", instanceID, port, errNoDial)
	}
	conn, err := dial(ctx, region, instanceID, port)
	if err != nil {
		return nil, fmt.Errorf("ec2sim: dial %s:%d: %w", instanceID, port, err)
	}
	return conn, nil
}

// SetDial replaces Options.Dial: how sessions' agents reach instances'
// ports. Tests that start the target after the simulator set it here.
func (s *Server) SetDial(dial func(ctx context.Context, region, instanceID string, port int) (net.Conn, error)) {
	s.lock()
	defer s.unlock()
	s.dial = dial
}

var errNoDial = errors.New("the simulator has no Options.Dial, so it refuses every connection")

// targetConnected reports why a session cannot reach an instance, nil if
// it can. Caller holds s.mu.
func (s *Server) targetConnected(region, instanceID string) error {
	reg, ok := s.regions[region]
	if !ok {
		return fmt.Errorf("no instance %s in %s", instanceID, region)
	}
	in, ok := reg.instances[instanceID]
	switch {
	case !ok:
		return fmt.Errorf("no instance %s in %s", instanceID, region)
	case in.agent == nil:
		return fmt.Errorf("instance %s has no SSM agent", instanceID)
	case in.pingStatus() != PingOnline:
		return fmt.Errorf("the SSM agent of %s is %s", instanceID, in.pingStatus())
	}
	return nil
}

func cloneParams(p map[string][]string) map[string][]string {
	out := make(map[string][]string, len(p))
	for _, k := range slices.Sorted(maps.Keys(p)) {
		out[k] = slices.Clone(p[k])
	}
	return out
}
