package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// metabaseLocales runs f against an English Metabase and once more against one that answers its
// errors in French: Metabase translates its messages, so nothing the bot decides may depend on
// their words, and the words it shows are Metabase's own.
func metabaseLocales(t *testing.T, f func(t *testing.T, locale string, opts ...metabasetest.Option)) {
	for _, locale := range []string{"en", "fr"} {
		t.Run(locale, func(t *testing.T) {
			t.Parallel()
			f(t, locale, metabasetest.WithLocale(locale))
		})
	}
}

// TestReturnOfFormerAdminOnOlderMetabase: a Metabase before PR #68198 refuses to reactivate a
// former admin while only one other admin (here the bot's key) is active
// (metabase/metabase#59776). The return fails in words that say what to do, stays retryable,
// and a Retry after another admin was added finishes it, with admin status restored.
func TestReturnOfFormerAdminOnOlderMetabase(t *testing.T) {
	t.Parallel()
	metabaseLocales(t, func(t *testing.T, locale string, opts ...metabasetest.Option) {
		h := newHarness(t, nil, append(opts, metabasetest.WithLastAdminBefore68198())...)
		jane := h.addAdminJane()
		h.start()
		card, _, _ := h.leave("jane@example.com", 3*time.Second)
		reply := h.thread(card, "jane@example.com: failed: "+access.FormerAdminText)
		if !strings.Contains(reply.AllText(), metabasetest.Words(locale, "You cannot remove the last member of the 'Admin' group!")) {
			t.Errorf("the failure does not carry Metabase's own words: %s", reply.AllText())
		}
		if !reply.HasAction("mb_retry") {
			t.Fatalf("the failed return has no Retry button: %s", reply.AllText())
		}
		if u, _ := h.mb.UserByID(jane.ID); u.Active {
			t.Fatal("jane is active after Metabase refused")
		}
		h.audit("failed", "enable jane@example.com")

		// An admin adds a second admin; an approver retries the return from its thread.
		h.mb.AddUser(metabasetest.User{Email: "root@example.com", FirstName: "Root", Active: true, Superuser: true})
		h.click(approver2, reply, "mb_retry")
		done := h.thread(card, "jane@example.com: enabled")
		if !strings.Contains(done.AllText(), "admin status restored") {
			t.Errorf("the retried return does not restore admin status: %s", done.AllText())
		}
		h.checkRestored(jane.ID)
		if n := h.exactCount("PUT", "/api/user/"+strconv.Itoa(jane.ID)+"/reactivate"); n != 2 {
			t.Errorf("reactivate calls = %d, want 2 (the refused one and the retry)", n)
		}
	})
}

// reactivateBehindTheBot reactivates a user directly in Metabase, as an admin would in its UI.
func (h *harness) reactivateBehindTheBot(id int) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.ctx(), "PUT", h.mb.URL()+"/api/user/"+strconv.Itoa(id)+"/reactivate", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", metabasetest.AdminAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		h.t.Fatalf("reactivate user %d behind the bot: %d", id, resp.StatusCode)
	}
}

// TestEnableOfUserReactivatedMeanwhile: someone reactivates jane in Metabase between the enable's
// request and its approval. Metabase answers the bot's reactivation with a 400 in its own
// language; the bot re-reads jane, finds her active, and reports her as already active (and,
// since she changed in Metabase, does not restore admin status) rather than as a failure.
func TestEnableOfUserReactivatedMeanwhile(t *testing.T) {
	t.Parallel()
	metabaseLocales(t, func(t *testing.T, locale string, opts ...metabasetest.Option) {
		h := newHarness(t, nil, opts...)
		jane := h.addAdminJane()
		h.start()
		h.disableApproved("disable jane@example.com Sabbatical", "jane@example.com")
		h.command(requester, "enable jane@example.com back")
		card := h.card("enable")
		h.reactivateBehindTheBot(jane.ID)
		h.click(approver, card, "mb_approve")
		h.thread(card, "jane@example.com: skipped: already active, admin not restored")
		if u, _ := h.mb.UserByID(jane.ID); !u.Active || u.Superuser {
			t.Errorf("jane: active=%v superuser=%v, want active and not restored to admin", u.Active, u.Superuser)
		}
	})
}
