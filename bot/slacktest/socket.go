package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const writeTimeout = 5 * time.Second

var errConnClosed = errors.New("slacktest: socket closed")

// slack-go dials with Origin: https://api.slack.com, so the upgrader must accept any origin.
var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// Ack is a Socket Mode acknowledgement read from a client socket.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // nil when the client acked without a payload
	// Latency is the time from writing the envelope (its latest delivery) to reading the ack. Slack shows the user
	// an error when an interaction is not acked within 3 s.
	Latency time.Duration
	// Unknown is true when no injected envelope has this ID.
	Unknown bool
	// PayloadError is the Slack error the ack payload of a slash command caused (e.g. invalid_blocks), if any.
	PayloadError string
}

// wsConn is one client socket. Writes are serialised by wmu (gorilla allows one writer); pings use WriteControl,
// which may run concurrently with writes.
type wsConn struct {
	s    *Server
	ws   *websocket.Conn
	wmu  sync.Mutex
	done chan struct{}
	once sync.Once
}

func (c *wsConn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return errConnClosed
	default:
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		c.close() // close never takes wmu
		return err
	}
	return nil
}

// close drops the socket (without a close frame, like Slack on a dead link) and forgets it. Idempotent.
func (c *wsConn) close() {
	c.once.Do(func() {
		close(c.done)
		_ = c.ws.Close()
		s := c.s
		s.mu.Lock()
		s.conns = slices.DeleteFunc(s.conns, func(x *wsConn) bool { return x == c })
		delete(s.allConns, c)
		s.broadcastLocked()
		s.mu.Unlock()
	})
}

// apiConnectionsOpen models apps.connections.open: a single-use ticket on ws://<fake>/link/.
func apiConnectionsOpen(s *Server, _ params) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket := s.nextIDLocked("") + "-" + randHex(8)
	s.tickets[ticket] = false
	u := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link/?ticket=" + ticket + "&app_id=" + appID
	return okResp{"url": u}
}

func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	used, known := s.tickets[ticket]
	if !known || used || s.closed {
		s.mu.Unlock()
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	s.tickets[ticket] = true
	s.mu.Unlock()

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &wsConn{s: s, ws: ws, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.allConns[c] = true
	s.wg.Add(2) // this reader and the pinger; httptest does not wait for hijacked connections
	n := len(s.conns) + 1
	s.mu.Unlock()
	defer s.wg.Done()
	defer c.close()

	ws.SetPongHandler(func(string) error {
		s.mu.Lock()
		s.pongs++
		s.mu.Unlock()
		return nil
	})
	go func() {
		defer s.wg.Done()
		s.ping(c)
	}()
	hello, _ := json.Marshal(map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info": map[string]any{
			"host": "applink-slacktest", "build_number": 1, "approximate_connection_time": 18060,
		},
		"connection_info": map[string]any{"app_id": appID},
	})
	if c.write(hello) != nil {
		return
	}
	// Only now may envelopes go to this socket: hello is always the first frame.
	s.mu.Lock()
	if !s.allConns[c] {
		s.mu.Unlock()
		return
	}
	s.conns = append(s.conns, c)
	s.connections++
	s.broadcastLocked()
	s.mu.Unlock()

	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if typ == websocket.TextMessage {
			s.readAck(data)
		} else {
			s.badFrame("binary frame")
		}
	}
}

// ping sends WebSocket PING control frames every PingInterval, as Slack does; slack-go's watchdog reconnects
// when none arrives within its own ping interval.
func (s *Server) ping(c *wsConn) {
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.ws.WriteControl(websocket.PingMessage, []byte(strconv.Itoa(n)), time.Now().Add(writeTimeout)); err != nil {
				c.close()
				return
			}
		}
	}
}

func (s *Server) badFrame(desc string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.badFrames = append(s.badFrames, desc)
	s.broadcastLocked()
}

// readAck matches a client frame {"envelope_id":…,"payload"?:…} to its envelope.
func (s *Server) readAck(data []byte) {
	now := time.Now()
	var a struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &a); err != nil || a.EnvelopeID == "" {
		s.badFrame(string(data))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ack := Ack{EnvelopeID: a.EnvelopeID}
	if len(a.Payload) > 0 && string(a.Payload) != "null" {
		ack.Payload = a.Payload
	}
	env, ok := s.envelopes[a.EnvelopeID]
	if !ok {
		ack.Unknown = true
	} else {
		ack.Latency = now.Sub(env.sentAt)
		env.acks++
		// accepts_response_payload: the first ack's text/blocks become the command's immediate reply.
		if env.acks == 1 && env.acceptsResponse && env.ru != nil && ack.Payload != nil {
			var msg responseMsg
			if err := json.Unmarshal(ack.Payload, &msg); err != nil {
				ack.PayloadError = "invalid_payload"
			} else if msg.Text != "" || (len(msg.Blocks) > 0 && string(msg.Blocks) != "null") {
				if e := s.respondLocked(env.ru, msg, "ack"); e != nil {
					ack.PayloadError = e.code
				}
			}
		}
	}
	s.acks = append(s.acks, ack)
	s.broadcastLocked()
}

// pickLocked chooses target sockets: every connected one, or one round-robin (Slack picks one at random).
func (s *Server) pickLocked(all bool) []*wsConn {
	if len(s.conns) == 0 {
		return nil
	}
	if all {
		return slices.Clone(s.conns)
	}
	c := s.conns[s.rr%len(s.conns)]
	s.rr++
	return []*wsConn{c}
}

// send writes a frame produced by frame() to one socket (or all), waiting up to ctx for a connected client and
// retrying on another socket if the chosen one died. onSent runs under s.mu just before the write.
func (s *Server) send(ctx context.Context, all bool, frame func() []byte, onSent func()) (int, error) {
	for {
		var targets []*wsConn
		var data []byte
		if err := s.waitFor(ctx, func() bool {
			targets = s.pickLocked(all)
			if len(targets) > 0 {
				data = frame()
				if onSent != nil {
					onSent()
				}
			}
			return len(targets) > 0
		}); err != nil {
			return 0, err
		}
		sent := 0
		for _, c := range targets {
			if c.write(data) == nil {
				sent++
			}
		}
		if sent > 0 {
			return sent, nil
		}
	}
}

// SendRaw writes an arbitrary text frame to one connected socket (for hostile-input tests), waiting up to ctx for
// a connection.
func (s *Server) SendRaw(ctx context.Context, frame []byte) error {
	data := slices.Clone(frame)
	_, err := s.send(ctx, false, func() []byte { return data }, nil)
	return err
}

// Disconnect sends {"type":"disconnect","reason":reason} to every connected socket (waiting up to ctx for one).
// Those sockets stop receiving envelopes at once; slack-go then drops the socket without a close frame and
// reconnects through apps.connections.open. Slack's reasons: "warning", "refresh_requested", "link_disabled",
// "too_many_websockets".
func (s *Server) Disconnect(ctx context.Context, reason string) error {
	var targets []*wsConn
	if err := s.waitFor(ctx, func() bool {
		targets = slices.Clone(s.conns)
		s.conns = nil
		return len(targets) > 0
	}); err != nil {
		return err
	}
	frame, _ := json.Marshal(map[string]any{
		"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "applink-slacktest"},
	})
	var errs []error
	for _, c := range targets {
		errs = append(errs, c.write(frame))
	}
	return errors.Join(errs...)
}

// WaitConnected blocks until a client socket is connected (hello sent) and able to receive envelopes.
func (s *Server) WaitConnected(ctx context.Context) error {
	return s.waitFor(ctx, func() bool { return len(s.conns) > 0 })
}

// Connected is the number of sockets currently receiving envelopes.
func (s *Server) Connected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// WaitSockets blocks until exactly n sockets are receiving envelopes, e.g. until the fake noticed that a killed
// client's socket is gone, so no envelope is written to it.
func (s *Server) WaitSockets(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return len(s.conns) == n })
}

// Connections is the number of successful apps.connections.open + dial + hello so far; reconnects add one each.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// WaitConnections blocks until Connections() >= n.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool { return s.connections >= n })
}

// Pongs is the number of WebSocket PONG frames received from clients.
func (s *Server) Pongs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pongs
}

// BadFrames lists client frames that were not acks (not JSON, or without envelope_id).
func (s *Server) BadFrames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.badFrames)
}

// WaitAck blocks until the first ack for envelopeID arrives and returns it.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var found Ack
	err := s.waitFor(ctx, func() bool {
		for _, a := range s.acks {
			if a.EnvelopeID == envelopeID {
				found = a
				return true
			}
		}
		return false
	})
	return found, err
}

// Acks returns every ack received for envelopeID, in arrival order (several after Redeliver or ClickAll).
func (s *Server) Acks(envelopeID string) []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ack
	for _, a := range s.acks {
		if a.EnvelopeID == envelopeID {
			out = append(out, a)
		}
	}
	return out
}

// AckLatencies returns the latency of every ack of a known envelope, in arrival order.
func (s *Server) AckLatencies() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, a := range s.acks {
		if !a.Unknown {
			out = append(out, a.Latency)
		}
	}
	return out
}
