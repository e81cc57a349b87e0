package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/store"
)

// anchorRe finds the audit-log anchor that ends an audit-channel message.
var anchorRe = regexp.MustCompile(` · #(\d+) · ([0-9a-f]{8})$`)

// TestAuditChannelCarriesTheChain: every audit event of a full flow (request, approval,
// execution) is appended to the hash chain in the store, each audit-channel message ends with its
// entry's sequence number and hash prefix, and `audit verify` accepts the chain against the last
// message as a checkpoint copied from Slack.
func TestAuditChannelCarriesTheChain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.addJane()
	in := h.start()
	h.disableApproved("disable jane@example.com Left the company", "jane@example.com")
	last := h.audit("executed", "jane@example.com")
	in.stop(t)

	var seqs []string
	for _, m := range h.slack.Messages() {
		if m.Channel != auditChannel || isCheckpoint(m) {
			continue
		}
		a := anchorRe.FindStringSubmatch(m.Text)
		if a == nil {
			t.Fatalf("audit message without its chain anchor: %q", m.Text)
		}
		seqs = append(seqs, a[1])
	}
	if want := []string{"1", "2", "3"}; strings.Join(seqs, ",") != strings.Join(want, ",") {
		t.Fatalf("audit messages carry entries %v, want %v (requested, approved, executed)", seqs, want)
	}
	st, err := store.Open(context.Background(), h.env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	head, err := st.AuditHead(t.Context())
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := anchorRe.FindStringSubmatch(last.Text)
	if fmt.Sprint(head.Seq) != a[1] || !strings.HasPrefix(head.Hash, a[2]) {
		t.Fatalf("chain head %s does not match the last audit message's anchor %q", head, a[0])
	}
	var out bytes.Buffer
	env := map[string]string{"DATABASE_URL": h.env["DATABASE_URL"]}
	if code := run(t.Context(), []string{"audit", "verify", "--checkpoint", a[1] + ":" + a[2]}, env, &out, &out); code != 0 {
		t.Fatalf("audit verify against the Slack checkpoint exited %d:\n%s", code, out.String())
	}
}
