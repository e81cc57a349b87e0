package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
	"github.com/metabase-bot/metabase-bot/metabase"
)

// fuzzRequestID in a fuzz input is replaced by the id of a pending request created for that
// input, so mutations of realistic payloads reach the approve, deny, cancel and retry paths.
const fuzzRequestID = "MB-SEED0000"

// Fixtures of the seeded request, shared with the seed corpus in testdata/fuzz/FuzzInteraction.
const (
	fuzzChannel   = "COPS"
	fuzzCardTS    = "1700000000.000100"
	fuzzRequester = "UREQ"
	fuzzTargetID  = 5
)

var fuzzApprovers = []string{"UAPP", "UAPP2"}

// FuzzInteraction feeds arbitrary bytes, decoded as Slack decodes an interactive envelope's
// payload, through the bot's dispatch (ack, team check, handler) and then its outbox delivery,
// with a real SQLite store and recording fakes of Slack and Metabase. It checks that nothing
// panics, every envelope is acked exactly once, no message the bot sends carries a live
// channel-wide mention, and Metabase is written only for an approval by an approver, on the
// request's own card in the request's own channel.
func FuzzInteraction(f *testing.F) {
	for _, seed := range []string{
		`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UAPP"},"channel":{"id":"COPS"},"container":{"type":"message","message_ts":"1700000000.000100","channel_id":"COPS"},"actions":[{"type":"button","action_id":"mb_approve","block_id":"mb_decision","value":"MB-SEED0000"}]}`,
		`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UREQ"},"channel":{"id":"COPS"},"container":{"message_ts":"1700000000.000100"},"actions":[{"action_id":"mb_cancel","value":"MB-SEED0000"}]}`,
		`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UAPP"},"channel":{"id":"COTHER"},"actions":[{"action_id":"mb_approve","value":"MB-SEED0000"}]}`,
		`{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UAPP2"},"channel":{"id":"COPS"},"actions":[{"action_id":"mb_deny","value":"MB-SEED0000"},{"action_id":"mb_retry","value":"<!channel>"}]}`,
		`{"type":"block_actions","team":{"id":"TOTHER"},"user":{"id":"UAPP"},"channel":{"id":"COPS"},"actions":[{"action_id":"mb_approve","value":"MB-SEED0000"}]}`,
		`{"type":"view_submission","team":{"id":"T1"},"user":{"id":"UAPP"},"view":{"callback_id":"mb_deny_form","private_metadata":"{\"request_id\":\"MB-SEED0000\",\"channel\":\"COPS\"}","state":{"values":{"mb_form_reason":{"reason":{"type":"plain_text_input","value":"<!here> no"}}}}}}`,
		`{"type":"block_actions","actions":[null]}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(fuzzStoreDir(f), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	var seq atomic.Int64

	f.Fuzz(func(t *testing.T, data []byte) {
		res, ok := runInteraction(t, st, fmt.Sprintf("MB-F%07d", seq.Add(1)), data)
		if !ok {
			return // socketmode reports undecodable payloads as bad messages; never dispatched
		}
		// Every fake answers at once, so a payload that keeps its handler past Slack's ack window
		// is one the bot lets hold a slot for nothing.
		if res.handled > fuzzHandlerBudget {
			t.Errorf("the handler took %s, over %s, for an input of %d bytes starting:\n%.300s", res.handled.Round(time.Millisecond), fuzzHandlerBudget, len(data), data)
		}
		if n := res.ack.count(); n != 1 {
			t.Errorf("envelope acked %d times, want 1", n)
		}
		for _, text := range res.slack.texts() {
			for _, p := range []string{"<!channel", "<!here", "<!everyone"} {
				if strings.Contains(text, p) {
					t.Errorf("the bot sent a live %s:\n%s", p, text)
				}
			}
		}
		if n := res.mb.disables.Load(); n > 0 {
			if n > 1 {
				t.Errorf("DisableUser called %d times for one request", n)
			}
			if !approvedOwnCard(res.cb, res.id) {
				t.Errorf("Metabase was written for an interaction that is not an approver's approval on the card:\n%s", data)
			}
		}
	})
}

// TestInteractionFuzzReachesMetabase proves the fuzz harness is not vacuous: the first seed,
// an approver's approval on the card, goes all the way to Metabase and to the outcome reply.
func TestInteractionFuzzReachesMetabase(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "fuzz.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	seed := `{"type":"block_actions","team":{"id":"T1"},"user":{"id":"UAPP"},"channel":{"id":"COPS"},"container":{"type":"message","message_ts":"1700000000.000100","channel_id":"COPS"},"actions":[{"type":"button","action_id":"mb_approve","block_id":"mb_decision","value":"MB-SEED0000"}]}`
	res, ok := runInteraction(t, st, "MB-T0000001", []byte(seed))
	if !ok {
		t.Fatal("the seed does not decode")
	}
	if n := res.mb.disables.Load(); n != 1 {
		t.Fatalf("DisableUser calls = %d, want 1", n)
	}
	all := strings.Join(res.slack.texts(), "\n")
	for _, want := range []string{"jane@example.com: disabled", "&lt;!channel&gt;"} {
		if !strings.Contains(all, want) {
			t.Errorf("nothing the bot sent contains %q:\n%s", want, all)
		}
	}
}

// fuzzHandlerBudget is Slack's ack window (https://api.slack.com/apis/socket-mode#acknowledge):
// with fakes that answer at once, no payload may keep a handler busy longer.
const fuzzHandlerBudget = 3 * time.Second

// fuzzStoreDir is where the fuzz target keeps its SQLite file: in memory-backed /dev/shm where
// the machine has it, else in the test's temporary directory. Each input commits several times;
// on a disk every commit waits for an fsync, and the fuzzer's minimisation of a new input (up to
// a minute of executions by default) then runs so slowly that the coordinator reports 0 execs/s
// for the whole minimisation, which looked like a stalled handler.
func fuzzStoreDir(f *testing.F) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "metabase-bot-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// interactionRun is what one fuzz input did.
type interactionRun struct {
	id      string
	handled time.Duration // from dispatch until every handler it started returned
	cb      slack.InteractionCallback
	ack     *fuzzAcker
	slack   *fuzzSlack
	mb      *memMetabase
}

// runInteraction creates pending request id, decodes data (with fuzzRequestID replaced by id)
// as an interactive payload, dispatches it, waits for its handler and delivers the outbox. It
// reports false when data does not decode.
func runInteraction(t *testing.T, st *store.Store, id string, data []byte) (interactionRun, bool) {
	ctx := context.Background()
	res := interactionRun{id: id, ack: &fuzzAcker{}, slack: newFuzzSlack(fuzzApprovers), mb: newMemMetabase(metabase.User{ID: fuzzTargetID, Email: "jane@example.com", IsActive: true})}
	if err := json.Unmarshal(bytes.ReplaceAll(data, []byte(fuzzRequestID), []byte(id)), &res.cb); err != nil {
		return res, false
	}
	now := time.Now()
	r := approval.Request{ID: id, Action: approval.Disable, State: approval.Pending, Requester: fuzzRequester,
		Targets:   []approval.Target{{UserID: fuzzTargetID, Email: "jane@example.com", Name: "Jane <!channel> Doe"}},
		Reason:    "<!channel> *urgent* <@UAPP>",
		ChannelID: fuzzChannel, MessageTS: fuzzCardTS, RequiredApprovals: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := st.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	b := newTestBot(t, Config{TeamID: "T1", ApproverGroup: "SAPP"}, testExecution("fuzz"), res.slack, res.mb, st)
	start := time.Now()
	b.dispatch(ctx, res.ack, socketmode.Event{Type: socketmode.EventTypeInteractive, Data: res.cb,
		Request: &socketmode.Request{EnvelopeID: "env-" + id, Type: "interactive"}})
	b.inflight.Wait()
	res.handled = time.Since(start)
	b.core.Drain(ctx)
	return res, true
}

// approvedOwnCard reports whether cb is an approver's approve click naming request id from its
// card's channel: the only interaction that may reach Metabase.
func approvedOwnCard(cb slack.InteractionCallback, id string) bool {
	if cb.Type != slack.InteractionTypeBlockActions || cb.Team.ID != "T1" || cb.Channel.ID != fuzzChannel ||
		cb.User.ID == fuzzRequester || !slices.Contains(fuzzApprovers, cb.User.ID) {
		return false
	}
	for _, a := range cb.ActionCallback.BlockActions {
		if a != nil && (a.ActionID == actionApprove || a.ActionID == actionRetry) && a.Value == id {
			return true
		}
	}
	return false
}

// fuzzAcker counts acks.
type fuzzAcker struct{ n atomic.Int32 }

var _ acker = (*fuzzAcker)(nil)

func (a *fuzzAcker) Ack(socketmode.Request, ...any) error { a.n.Add(1); return nil }
func (a *fuzzAcker) count() int                           { return int(a.n.Load()) }

// fuzzSlack sends chat calls through a real slack-go client whose HTTP transport records the
// form bodies in memory (no sockets), so the recorded text and blocks are exactly what Slack
// would receive.
type fuzzSlack struct {
	*slack.Client
	members []string
	mu      sync.Mutex
	sent    []string
	seq     int
}

var _ slackAPI = (*fuzzSlack)(nil)

func newFuzzSlack(members []string) *fuzzSlack {
	s := &fuzzSlack{members: members}
	s.Client = slack.New("xoxb-fuzz", slack.OptionAPIURL("http://slack.invalid/api/"),
		slack.OptionHTTPClient(&http.Client{Transport: s}))
	return s
}

// RoundTrip records one Web API call and answers it like Slack.
func (s *fuzzSlack) RoundTrip(req *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(req.Body)
	form, _ := url.ParseQuery(string(body))
	s.mu.Lock()
	s.sent = append(s.sent, form.Get("text")+"\n"+unescapedJSON(form.Get("blocks")))
	s.seq++
	ts := fmt.Sprintf("1700000001.%06d", s.seq)
	s.mu.Unlock()
	reply, _ := json.Marshal(map[string]any{"ok": true, "channel": form.Get("channel"), "ts": ts, "message_ts": ts})
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(reply)), Request: req}, nil
}

// unescapedJSON re-encodes JSON without Go's \u003c escapes, so "<!channel" is found as
// Slack would read it.
func unescapedJSON(raw string) string {
	var v any
	if json.Unmarshal([]byte(raw), &v) != nil {
		return raw
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return buf.String()
}

func (s *fuzzSlack) texts() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

func (s *fuzzSlack) GetUserGroupMembersContext(context.Context, string, ...slack.GetUserGroupMembersOption) ([]string, error) {
	return s.members, nil
}

func (s *fuzzSlack) GetUserInfoContext(_ context.Context, user string, _ ...slack.GetUserInfoOption) (*slack.User, error) {
	return &slack.User{ID: user, Profile: slack.UserProfile{Email: strings.ToLower(user) + "@example.com"}}, nil
}

func (s *fuzzSlack) OpenViewContext(_ context.Context, _ string, v slack.ModalViewRequest) (*slack.ViewResponse, error) {
	b, _ := json.Marshal(v)
	s.mu.Lock()
	s.sent = append(s.sent, string(b))
	s.mu.Unlock()
	return &slack.ViewResponse{}, nil
}
