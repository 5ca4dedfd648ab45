// Package datachannel is the simulator's side of AWS Systems Manager
// Session Manager's data channel: the WebSocket a StartSession response's
// StreamUrl names, spoken well enough for AWS's real session-manager-plugin
// to run a session against it.
//
// The plugin opens wss://…/v1/data-channel/SESSION_ID, sends a text message
// with the session's token, and from then on both sides exchange binary
// messages (see message.go): the agent's output_stream_data, the client's
// input_stream_data, an acknowledge for every stream message, and a
// channel_closed from the service when the session ends. The agent speaks
// first with a handshake that tells the plugin the session type; this
// package plays agent and service in one, by document:
//
//   - AWS-StartPortForwardingSession (portNumber, localPortNumber): session
//     type Port, type LocalPortForwarding. The plugin runs an smux client
//     over the stream (the agent version announced is newer than 3.0.196.0,
//     and than 3.1.1511.0, so smux keepalive is off on both sides); every
//     smux stream is one connection to the target's port.
//   - AWS-StartSSHSession (portNumber, default 22): session type Port with
//     no type: the plugin forwards its stdin and stdout to one connection to
//     the target's port, as ssh's ProxyCommand needs.
//   - SSM-SessionManagerRunShell, or no document: session type
//     Standard_Stream, a /bin/sh on a pseudo-terminal of the machine running
//     the simulator, in a temporary directory with a minimal environment.
//
// What the session reaches is up to the Sessions the server is given:
// DialTarget opens the connection to an instance's port.
package datachannel

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/gorilla/websocket"
	"github.com/xtaci/smux"
)

// Sessions is the simulator's side the channel needs.
type Sessions interface {
	// LookupSession returns the active session with the ID, with its
	// current token.
	LookupSession(id string) (Session, bool)
	// EndSession records that the client ended the session (the plugin sent
	// the TerminateSession flag).
	EndSession(id string)
	// DialTarget connects to a port of an instance.
	DialTarget(ctx context.Context, region, instanceID string, port int) (net.Conn, error)
}

// Session is what the channel needs to know of a session.
type Session struct {
	ID, Token, Region, Target, Document string
	Parameters                          map[string][]string
}

// Documents the channel serves.
const (
	DocumentPortForwarding = "AWS-StartPortForwardingSession"
	DocumentSSH            = "AWS-StartSSHSession"
	DocumentShell          = "SSM-SessionManagerRunShell"
)

// PathPrefix is where the channel is served: PathPrefix + session ID.
const PathPrefix = "/v1/data-channel/"

// TerminatedOutput is the text the plugin prints when Terminate ends its
// session ("SessionId: ID : TerminatedOutput").
const TerminatedOutput = "Your session has been terminated."

// agentVersion is the SSM agent version the handshake announces: newer than
// 3.0.196.0, so the plugin multiplexes port forwarding with smux, and than
// 3.1.1511.0, so it turns smux keepalive off.
const agentVersion = "3.3.1142.0"

const (
	firstMessageTimeout = 30 * time.Second
	writeTimeout        = 10 * time.Second
	resendInterval      = 100 * time.Millisecond
	resendAfter         = 300 * time.Millisecond
	maxChunk            = 4096
)

// Server serves the data channel. It is an http.Handler for PathPrefix.
type Server struct {
	sessions     Sessions
	log          *slog.Logger
	upgrader     websocket.Upgrader
	agentVersion string

	mu       sync.Mutex
	channels map[*channel]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// New returns a Server for the sessions s. A nil logger discards.
func New(s Sessions, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		sessions:     s,
		log:          logger,
		upgrader:     websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		agentVersion: agentVersion,
		channels:     map[*channel]struct{}{},
	}
}

// ServeHTTP upgrades PathPrefix+SESSION_ID to the session's data channel
// and serves it until either side closes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	if !ok || id == "" || strings.Contains(id, "/") {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "the data channel server is closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Info("data channel: upgrade failed", "session", id, "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &channel{srv: s, ws: ws, id: id, ctx: ctx, cancel: cancel, unacked: map[int64]*pending{}, inBuf: map[int64]message{}}
	c.sendCond = sync.NewCond(&c.sendMu)
	c.run()
}

// Terminate ends the session's channels: each is sent a channel_closed
// message (the plugin prints its Output and exits) and closed.
func (s *Server) Terminate(sessionID string) {
	for _, c := range s.list(sessionID) {
		c.closeWith(TerminatedOutput)
	}
}

// Close ends every channel as Terminate does, refuses new ones, and waits
// for the channels' goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for _, c := range s.list("") {
		c.closeWith(TerminatedOutput)
	}
	s.wg.Wait()
	return nil
}

// list returns the registered channels of a session, or all of them.
func (s *Server) list(sessionID string) []*channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*channel
	for c := range s.channels {
		if sessionID == "" || c.id == sessionID {
			cs = append(cs, c)
		}
	}
	return cs
}

// channel is one WebSocket connection of a session.
type channel struct {
	srv    *Server
	ws     *websocket.Conn
	id     string
	sess   Session
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines run starts

	writeMu sync.Mutex // one writer at a time on ws

	sendMu   sync.Mutex // orders output_stream_data and guards what follows
	sendCond *sync.Cond // signalled when unacked shrinks or the channel ends
	outSeq   int64
	unacked  map[int64]*pending
	ended    bool

	closeOnce sync.Once

	// Read loop only.
	inSeq   int64
	inBuf   map[int64]message
	started bool
	mode    mode
}

type pending struct {
	raw  []byte
	sent time.Time
}

// mode is what the session does with the client's data.
type mode interface {
	start() error
	input(payloadType uint32, data []byte)
	flag(f uint32)
	close()
}

type openDataChannel struct {
	MessageSchemaVersion string
	RequestId            string
	TokenValue           string
	ClientId             string
	ClientVersion        string
}

func (c *channel) logger() *slog.Logger { return c.srv.log.With("session", c.id) }

func (c *channel) run() {
	defer c.teardown()
	_ = c.ws.SetReadDeadline(time.Now().Add(firstMessageTimeout))
	mt, first, err := c.ws.ReadMessage()
	if err != nil {
		c.logger().Info("data channel: no open message", "err", err)
		return
	}
	_ = c.ws.SetReadDeadline(time.Time{})
	var open openDataChannel
	if mt != websocket.TextMessage || json.Unmarshal(first, &open) != nil {
		c.closeWith("The data channel expected its open message first.")
		return
	}
	sess, ok := c.srv.sessions.LookupSession(c.id)
	if !ok || subtle.ConstantTimeCompare([]byte(sess.Token), []byte(open.TokenValue)) != 1 {
		c.logger().Info("data channel: refused", "known", ok)
		c.closeWith("Invalid token or session ID for the data channel.")
		return
	}
	c.sess = sess
	hs, m, err := c.handshake()
	if err != nil {
		c.closeWith(err.Error())
		return
	}
	c.mode = m
	if !c.register() {
		c.closeWith(TerminatedOutput)
		return
	}
	defer c.unregister()
	c.wg.Add(1)
	go c.resendLoop()
	if err := c.send(payloadHandshakeRequest, hs); err != nil {
		return
	}
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.logger().Debug("data channel: read ended", "err", err)
			return
		}
		if mt != websocket.BinaryMessage {
			continue
		}
		msg, err := unmarshal(data)
		if err != nil {
			c.logger().Info("data channel: bad message", "err", err)
			continue
		}
		switch msg.Type {
		case typeAcknowledge:
			c.acknowledged(msg)
		case typeInput:
			if err := c.ack(msg); err != nil {
				return
			}
			if !c.receive(msg) {
				return
			}
		}
	}
}

func (c *channel) register() bool {
	s := c.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.channels[c] = struct{}{}
	return true
}

func (c *channel) unregister() {
	c.srv.mu.Lock()
	delete(c.srv.channels, c)
	c.srv.mu.Unlock()
}

// teardown ends everything the channel started and waits for it.
func (c *channel) teardown() {
	c.cancel()
	c.sendMu.Lock()
	c.ended = true
	c.sendCond.Broadcast()
	c.sendMu.Unlock()
	_ = c.ws.Close()
	if c.mode != nil {
		c.mode.close()
	}
	c.wg.Wait()
}

// handshake returns the handshake request for the session's document and
// the mode that serves it.
func (c *channel) handshake() ([]byte, mode, error) {
	param := func(name, def string) string {
		if v := c.sess.Parameters[name]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
		return def
	}
	port := func(def string) (int, string, error) {
		p := param("portNumber", def)
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return 0, "", reasonf("Invalid portNumber %q for document %s.", p, c.sess.Document)
		}
		return n, p, nil
	}
	var (
		sessionType string
		props       = map[string]string{}
		m           mode
	)
	switch c.sess.Document {
	case DocumentPortForwarding:
		n, p, err := port("")
		if err != nil {
			return nil, nil, err
		}
		sessionType = "Port"
		props["portNumber"] = p
		props["type"] = "LocalPortForwarding"
		if lp := param("localPortNumber", ""); lp != "" {
			props["localPortNumber"] = lp
		}
		if versionAtLeast(c.srv.agentVersion, "3.0.196.1") {
			m = &muxMode{c: c, port: n, keepAlive: !versionAtLeast(c.srv.agentVersion, "3.1.1511.1")}
		} else {
			m = &streamMode{c: c, port: n, basic: true}
		}
	case DocumentSSH:
		n, p, err := port("22")
		if err != nil {
			return nil, nil, err
		}
		sessionType = "Port"
		props["portNumber"] = p
		m = &streamMode{c: c, port: n}
	case DocumentShell, "":
		sessionType = "Standard_Stream"
		m = &shellMode{c: c}
	default:
		return nil, nil, reasonf("The simulator does not run document %s.", c.sess.Document)
	}
	params, _ := json.Marshal(map[string]any{"SessionType": sessionType, "Properties": props})
	hs, err := json.Marshal(map[string]any{
		"AgentVersion": c.srv.agentVersion,
		"RequestedClientActions": []map[string]any{
			{"ActionType": "SessionType", "ActionParameters": json.RawMessage(params)},
		},
	})
	return hs, m, err
}

// receive takes a client stream message, in sequence order: later ones
// wait in inBuf, earlier ones (resent) are dropped. It reports whether the
// channel goes on.
func (c *channel) receive(m message) bool {
	if m.Seq < c.inSeq {
		return true
	}
	if m.Seq > c.inSeq {
		m.Payload = slices.Clone(m.Payload)
		c.inBuf[m.Seq] = m
		return true
	}
	for {
		if !c.handle(m) {
			return false
		}
		c.inSeq++
		next, ok := c.inBuf[c.inSeq]
		if !ok {
			return true
		}
		delete(c.inBuf, c.inSeq)
		m = next
	}
}

type processedAction struct {
	ActionType   string
	ActionStatus int
	Error        string
}

func (c *channel) handle(m message) bool {
	switch m.PayloadType {
	case payloadHandshakeResponse:
		var resp struct {
			ClientVersion          string
			ProcessedClientActions []processedAction
			Errors                 []string
		}
		if err := json.Unmarshal(m.Payload, &resp); err != nil {
			c.closeWith("Invalid handshake response.")
			return false
		}
		for _, a := range resp.ProcessedClientActions {
			if a.ActionStatus != 1 {
				c.closeWith(fmt.Sprintf("The client could not process %s: %s", a.ActionType, a.Error))
				return false
			}
		}
		c.logger().Info("data channel: handshake", "client", resp.ClientVersion, "document", c.sess.Document)
		done, _ := json.Marshal(map[string]any{"HandshakeTimeToComplete": time.Millisecond, "CustomerMessage": ""})
		if err := c.send(payloadHandshakeComplete, done); err != nil {
			return false
		}
		if err := c.mode.start(); err != nil {
			c.closeWith(err.Error())
			return false
		}
		c.started = true
	case payloadFlag:
		if len(m.Payload) < 4 {
			return true
		}
		f := binary.BigEndian.Uint32(m.Payload)
		if f == flagTerminateSession {
			c.logger().Info("data channel: the client terminated the session")
			c.srv.sessions.EndSession(c.id)
			return false
		}
		if c.started {
			c.mode.flag(f)
		}
	default:
		if c.started {
			c.mode.input(m.PayloadType, m.Payload)
		}
	}
	return true
}

// ack acknowledges a client stream message.
func (c *channel) ack(m message) error {
	content, _ := json.Marshal(map[string]any{
		"AcknowledgedMessageType":           m.Type,
		"AcknowledgedMessageId":             m.ID.String(),
		"AcknowledgedMessageSequenceNumber": m.Seq,
		"IsSequentialMessage":               true,
	})
	a := message{Type: typeAcknowledge, SchemaVersion: 1, CreatedDate: now(), Flags: 3, ID: newUUID(), Payload: content}
	raw, err := a.marshal()
	if err != nil {
		return err
	}
	return c.write(raw)
}

// acknowledged takes the client's acknowledgement of an output message.
func (c *channel) acknowledged(m message) {
	var a struct {
		AcknowledgedMessageSequenceNumber int64
	}
	if json.Unmarshal(m.Payload, &a) != nil {
		return
	}
	c.sendMu.Lock()
	delete(c.unacked, a.AcknowledgedMessageSequenceNumber)
	c.sendCond.Broadcast()
	c.sendMu.Unlock()
}

// send sends data as output_stream_data messages of the payload type, in
// chunks, and keeps each until the client acknowledges it.
func (c *channel) send(payloadType uint32, data []byte) error {
	for {
		chunk := data
		if len(chunk) > maxChunk {
			chunk = chunk[:maxChunk]
		}
		if err := c.sendOne(payloadType, chunk); err != nil {
			return err
		}
		data = data[len(chunk):]
		if len(data) == 0 {
			return nil
		}
	}
}

func (c *channel) sendOne(payloadType uint32, payload []byte) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if c.ended {
		return net.ErrClosed
	}
	m := message{Type: typeOutput, SchemaVersion: 1, CreatedDate: now(), Seq: c.outSeq, ID: newUUID(), PayloadType: payloadType, Payload: payload}
	if c.outSeq == 0 {
		m.Flags = 1 // SYN
	}
	raw, err := m.marshal()
	if err != nil {
		return err
	}
	c.unacked[m.Seq] = &pending{raw: raw, sent: time.Now()}
	c.outSeq++
	return c.write(raw)
}

// resendLoop resends output the client has not acknowledged: the plugin
// drops stream data that arrives before its session handler is ready.
func (c *channel) resendLoop() {
	defer c.wg.Done()
	t := time.NewTicker(resendInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		c.sendMu.Lock()
		seqs := make([]int64, 0, len(c.unacked))
		for s, p := range c.unacked {
			if time.Since(p.sent) >= resendAfter {
				seqs = append(seqs, s)
			}
		}
		slices.Sort(seqs)
		var err error
		for _, s := range seqs {
			p := c.unacked[s]
			if err = c.write(p.raw); err != nil {
				break
			}
			p.sent = time.Now()
		}
		c.sendMu.Unlock()
		if err != nil {
			return
		}
	}
}

// drained waits until the client has acknowledged all output, or the
// channel ends; it reports which.
func (c *channel) drained() bool {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	for len(c.unacked) > 0 && !c.ended {
		c.sendCond.Wait()
	}
	return !c.ended
}

func (c *channel) write(raw []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.BinaryMessage, raw)
}

// closeWith sends channel_closed with the output, as the service does when
// a session ends, and closes the WebSocket. The read loop then ends and
// tears the channel down.
func (c *channel) closeWith(output string) {
	c.closeOnce.Do(func() {
		content, _ := json.Marshal(map[string]any{
			"MessageId":     newUUID().String(),
			"CreatedDate":   time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
			"DestinationId": c.sess.Target,
			"SessionId":     c.id,
			"MessageType":   typeChannelClosed,
			"SchemaVersion": 1,
			"Output":        output,
		})
		c.sendMu.Lock()
		m := message{Type: typeChannelClosed, SchemaVersion: 1, CreatedDate: now(), Seq: c.outSeq, ID: newUUID(), PayloadType: payloadOutput, Payload: content}
		c.sendMu.Unlock()
		if raw, err := m.marshal(); err == nil {
			_ = c.write(raw)
		}
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		_ = c.ws.Close()
	})
}

func now() uint64 { return uint64(time.Now().UnixMilli()) }

// go starts f as one of the channel's goroutines.
func (c *channel) goroutine(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

func (c *channel) dial(port int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	return c.srv.sessions.DialTarget(ctx, c.sess.Region, c.sess.Target, port)
}

// muxMode serves multiplexed port forwarding: an smux server over the
// stream, each smux stream one connection to the port.
type muxMode struct {
	c         *channel
	port      int
	keepAlive bool
	pipe      *queuePipe
	smux      *smux.Session
}

func (m *muxMode) start() error {
	m.pipe = newQueuePipe(func(p []byte) error { return m.c.send(payloadOutput, p) })
	cfg := smux.DefaultConfig()
	cfg.KeepAliveDisabled = !m.keepAlive
	s, err := smux.Server(m.pipe, cfg)
	if err != nil {
		return err
	}
	m.smux = s
	m.c.goroutine(func() {
		for {
			st, err := s.AcceptStream()
			if err != nil {
				return
			}
			m.c.goroutine(func() { m.serve(st) })
		}
	})
	return nil
}

func (m *muxMode) serve(st *smux.Stream) {
	conn, err := m.c.dial(m.port)
	if err != nil {
		m.c.logger().Info("data channel: dial failed", "port", m.port, "err", err)
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], flagConnectToPortError)
		_ = m.c.send(payloadFlag, b[:])
		_ = st.Close()
		return
	}
	join(m.c.ctx, st, conn)
}

func (m *muxMode) input(payloadType uint32, data []byte) {
	if payloadType == payloadOutput {
		m.pipe.push(data)
	}
}

func (m *muxMode) flag(uint32) {}

func (m *muxMode) close() {
	if m.smux != nil {
		_ = m.smux.Close()
	}
	if m.pipe != nil {
		_ = m.pipe.Close()
	}
}

// join copies between a and b until either side ends or ctx does, then
// closes both.
func join(ctx context.Context, a, b io.ReadWriteCloser) {
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(a, b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(b, a); done <- struct{}{} }()
	ended := 0
	select {
	case <-done:
		ended++
	case <-ctx.Done():
	}
	_ = a.Close()
	_ = b.Close()
	for ; ended < 2; ended++ {
		<-done
	}
}

// queuePipe is the smux server's connection: what the client sends is
// queued for Read (never blocking the WebSocket's read loop), and Write
// sends output.
type queuePipe struct {
	mu     sync.Mutex
	cond   *sync.Cond
	queue  [][]byte
	closed bool
	out    func([]byte) error
}

func newQueuePipe(out func([]byte) error) *queuePipe {
	p := &queuePipe{out: out}
	p.cond = sync.NewCond(&p.mu)
	return p
}

func (p *queuePipe) push(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed && len(b) > 0 {
		p.queue = append(p.queue, slices.Clone(b))
		p.cond.Signal()
	}
}

func (p *queuePipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.queue) == 0 && !p.closed {
		p.cond.Wait()
	}
	if len(p.queue) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.queue[0])
	if n == len(p.queue[0]) {
		p.queue = p.queue[1:]
	} else {
		p.queue[0] = p.queue[0][n:]
	}
	return n, nil
}

func (p *queuePipe) Write(b []byte) (int, error) {
	if err := p.out(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *queuePipe) Close() error {
	p.mu.Lock()
	p.closed = true
	p.queue = nil
	p.cond.Broadcast()
	p.mu.Unlock()
	return nil
}

// streamMode forwards the stream to one connection to the port: the
// plugin's standard stream forwarding (ssh's ProxyCommand) or, with basic,
// its basic port forwarding, where a DisconnectToPort flag closes the
// connection and the next data opens a new one.
type streamMode struct {
	c     *channel
	port  int
	basic bool

	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

func (m *streamMode) start() error {
	_, err := m.connect()
	return err
}

// connect dials the port and starts copying what it sends to the client.
func (m *streamMode) connect() (net.Conn, error) {
	conn, err := m.c.dial(m.port)
	if err != nil {
		m.c.logger().Info("data channel: dial failed", "port", m.port, "err", err)
		return nil, reasonf("Unable to connect to port %d on %s: %v", m.port, m.c.sess.Target, err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = conn.Close()
		return nil, net.ErrClosed
	}
	m.conn = conn
	m.mu.Unlock()
	m.c.goroutine(func() {
		buf := make([]byte, maxChunk)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if m.c.send(payloadOutput, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
		m.mu.Lock()
		current := m.conn == conn
		m.mu.Unlock()
		// The port closed the connection: a standard stream session ends
		// with it, once the client has all that came before.
		if !m.basic && current && m.c.drained() {
			m.c.closeWith("")
		}
	})
	return conn, nil
}

func (m *streamMode) input(payloadType uint32, data []byte) {
	if payloadType != payloadOutput {
		return
	}
	m.mu.Lock()
	conn := m.conn
	m.mu.Unlock()
	if conn == nil && m.basic {
		var err error
		if conn, err = m.connect(); err != nil {
			return
		}
	}
	if conn != nil {
		_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, _ = conn.Write(data)
	}
}

func (m *streamMode) flag(f uint32) {
	if f != flagDisconnectToPort || !m.basic {
		return
	}
	m.mu.Lock()
	conn := m.conn
	m.conn = nil
	m.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

func (m *streamMode) close() {
	m.mu.Lock()
	m.closed = true
	conn := m.conn
	m.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
}

// shellMode runs /bin/sh on a pseudo-terminal.
type shellMode struct {
	c   *channel
	dir string
	pty *os.File
	cmd *exec.Cmd
}

func (m *shellMode) start() error {
	dir, err := os.MkdirTemp("", "latch-ssm-shell-")
	if err != nil {
		return err
	}
	m.dir = dir
	cmd := exec.Command("/bin/sh")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + dir, "TERM=xterm-256color", "PS1=$ ", "SHELL=/bin/sh"}
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		return reasonf("Unable to start a shell: %v", err)
	}
	m.pty, m.cmd = f, cmd
	m.c.goroutine(func() {
		buf := make([]byte, maxChunk)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				if m.c.send(payloadOutput, buf[:n]) != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = cmd.Wait()
		// The shell exited: the session ends once the client has its output.
		if m.c.drained() {
			m.c.closeWith("")
		}
	})
	return nil
}

func (m *shellMode) input(payloadType uint32, data []byte) {
	switch payloadType {
	case payloadOutput:
		_, _ = m.pty.Write(data)
	case payloadSize:
		var size struct{ Cols, Rows uint16 }
		if json.Unmarshal(data, &size) == nil && size.Cols > 0 && size.Rows > 0 {
			_ = pty.Setsize(m.pty, &pty.Winsize{Rows: size.Rows, Cols: size.Cols})
		}
	}
}

func (m *shellMode) flag(uint32) {}

func (m *shellMode) close() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Kill()
	}
	if m.pty != nil {
		_ = m.pty.Close()
	}
	if m.dir != "" {
		_ = os.RemoveAll(m.dir)
	}
}

// versionAtLeast compares dotted numeric versions.
func versionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			return x > y
		}
	}
	return true
}

// reason is an error whose text is a channel_closed message's Output, which
// the plugin prints as it is.
type reason string

func (r reason) Error() string { return string(r) }

func reasonf(format string, args ...any) error { return reason(fmt.Sprintf(format, args...)) }
