package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/slacktest"
	"github.com/metabase-bot/metabase-bot/metabase/metabasetest"
)

// seedLeaver gives an admin leaver two keys (one in the Admin group), makes the bot's own key
// one they regenerated last, and gives a colleague a key.
func seedLeaver(h *harness) (lee, ann metabasetest.User) {
	lee = h.mb.AddUser(metabasetest.User{Email: "lee@example.com", FirstName: "Lee", Active: true, Superuser: true})
	ann = h.mb.AddUser(metabasetest.User{Email: "ann@example.com", FirstName: "Ann", Active: true, Superuser: true})
	h.mb.AddAPIKey(metabasetest.APIKey{Name: "etl-admin", GroupID: metabasetest.AdministratorsGroupID, UpdatedByID: lee.ID})
	h.mb.AddAPIKey(metabasetest.APIKey{Name: "dash-embed", UpdatedByID: lee.ID})
	h.mb.AddAPIKey(metabasetest.APIKey{Name: "anns-key", UpdatedByID: ann.ID})
	h.mb.AddAPIKey(metabasetest.APIKey{Name: "metabase-bot", Key: metabasetest.AdminAPIKey, GroupID: metabasetest.AdministratorsGroupID, UpdatedByID: lee.ID})
	return lee, ann
}

func keyNames(h *harness) []string {
	var names []string
	for _, k := range h.mb.APIKeys() {
		names = append(names, k.Name)
	}
	slices.Sort(names)
	return names
}

// TestRevokeKeys: `revoke-keys` deletes exactly the leaver's two keys in the approval's
// execution, never the bot's own key, says so one line per key and counts it on the audit line.
func TestRevokeKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	seedLeaver(h)
	h.start()
	h.command(requester, "disable lee@example.com revoke-keys Left the company")
	card := h.card("lee@example.com")
	if text := card.AllText(); !strings.Contains(text, "Approving also deletes 2 API keys:* etl-admin, dash-embed") {
		t.Fatalf("the card does not say what will be revoked:\n%s", text)
	}
	if n := h.mb.Count("DELETE", "/api/api-key/"); n != 0 {
		t.Fatalf("%d keys deleted before approval", n)
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "lee@example.com: disabled")
	h.thread(card, "lee@example.com: API key etl-admin revoked")
	h.thread(card, "lee@example.com: API key dash-embed revoked")
	h.thread(card, "lee@example.com: not revoked: this bot's own key, rotate it by hand")
	h.audit("executed", "lee@example.com", "API keys revoked 2, not revoked 1")
	if got := keyNames(h); !slices.Equal(got, []string{"anns-key", "metabase-bot"}) {
		t.Errorf("keys left %v, want the colleague's and the bot's", got)
	}
	if n := h.mb.Count("DELETE", "/api/api-key/"); n != 2 {
		t.Errorf("%d key DELETEs, want 2", n)
	}
}

// TestRevokeKeysGrammar: the options go with disable only, once each, in either order; a
// reason may not start with one again; nothing is created for a refused command.
func TestRevokeKeysGrammar(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	seedLeaver(h)
	h.start()
	for cmd, want := range map[string]string{
		"enable lee@example.com revoke-keys Back":                  "only goes with `disable`",
		"enable lee@example.com unshare Back":                      "only goes with `disable`",
		"disable lee@example.com revoke-keys revoke-keys Left":     "`revoke-keys` may be given once",
		"disable lee@example.com unshare revoke-keys unshare Left": "`unshare` may be given once",
	} {
		h.command(requester, cmd)
		h.ephemeral(requester, want)
	}
	if n := h.cards("lee@example.com"); n != 0 {
		t.Errorf("%d cards posted for refused commands", n)
	}
	h.command(requester, "disable lee@example.com unshare revoke-keys Left the company")
	text := h.card("lee@example.com").AllText()
	if !strings.Contains(text, "Approving also deletes 2 API keys") || !strings.Contains(text, "public link is shown as theirs") {
		t.Errorf("options in the other order were not both taken:\n%s", text)
	}
	if strings.Contains(text, "Reason:* unshare") || strings.Contains(text, "Reason:* revoke-keys") {
		t.Errorf("an option was read as the reason:\n%s", text)
	}
}

// TestUnshare removes the leaver's public links on approval where Metabase names them as the
// sharer, leaves a colleague's, and refuses the option where Metabase does not say who shared a
// link.
func TestUnshare(t *testing.T) {
	t.Parallel()
	t.Run("sharer known", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		lee, ann := seedLeaver(h)
		d := h.mb.AddPublicItem(metabasetest.PublicItem{Kind: "dashboard", Name: "Board KPIs", PublicUUID: "11111111-1111-1111-1111-111111111111", MadePublicByID: lee.ID})
		q := h.mb.AddPublicItem(metabasetest.PublicItem{Kind: "card", Name: "Ann's", PublicUUID: "22222222-2222-2222-2222-222222222222", MadePublicByID: ann.ID})
		h.start()
		h.command(requester, "disable lee@example.com unshare Left the company")
		card := h.card("lee@example.com")
		if !strings.Contains(card.AllText(), "Approving also removes 1 public link:* dashboard Board KPIs") {
			t.Fatalf("the card does not say what will be removed:\n%s", card.AllText())
		}
		h.click(approver, card, "mb_approve")
		h.thread(card, "lee@example.com: public link of dashboard Board KPIs removed")
		h.audit("executed", "lee@example.com", "public links removed 1, not removed 0")
		if it, _ := h.mb.PublicItemByID("dashboard", d.ID); it.PublicUUID != "" {
			t.Error("the leaver's link still answers")
		}
		if it, _ := h.mb.PublicItemByID("card", q.ID); it.PublicUUID == "" {
			t.Error("the colleague's link was removed")
		}
	})
	t.Run("sharer not told", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, nil)
		seedLeaver(h)
		h.mb.AddPublicItem(metabasetest.PublicItem{Kind: "card", Name: "old", PublicUUID: "33333333-3333-3333-3333-333333333333"})
		h.start()
		h.command(requester, "disable lee@example.com unshare Left the company")
		h.ephemeral(requester, "Metabase does not say who shared a link; review them in Admin > Settings > Public sharing")
		if n := h.cards("lee@example.com"); n != 0 {
			t.Errorf("%d cards for a refused unshare", n)
		}
	})
}

// TestRevokeKeysCrash: the process dies after Metabase deleted the first key but before the
// reply; the next process finishes, counts that key as revoked and deletes the other once, on
// SQLite and on PostgreSQL.
func TestRevokeKeysCrash(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			h, st := crashHarness(t, backend)
			seedLeaver(h)
			first := h.spawn()
			h.command(requester, "disable lee@example.com revoke-keys Left the company")
			card := h.card("lee@example.com")
			release := h.mb.HoldReply("DELETE", "/api/api-key/:id")
			h.click(approver, card, "mb_approve")
			if err := h.mb.WaitForRequests(h.ctx(), "DELETE", "/api/api-key/", 1); err != nil {
				t.Fatalf("no key DELETE: %v", err)
			}
			h.audit("approved", "lee@example.com")
			h.drained(st)
			h.kill(first, 0)
			release()
			if r := h.requestOf(st, card); r.State != approval.Executing {
				t.Fatalf("after the crash the request is %s, want executing", r.State)
			}
			h.spawn()
			h.thread(card, "lee@example.com: API key etl-admin revoked")
			h.thread(card, "lee@example.com: API key dash-embed revoked")
			h.audit("executed", "lee@example.com", "API keys revoked 2, not revoked 1")
			if got := keyNames(h); !slices.Equal(got, []string{"anns-key", "metabase-bot"}) {
				t.Errorf("keys left %v", got)
			}
			if n := h.mb.Count("DELETE", "/api/api-key/"); n != 2 {
				t.Errorf("%d key DELETEs across the crash, want 2 (each key once)", n)
			}
		})
	}
}

// TestRevokeKeysDryRun: in dry run the keys and links are listed as what would be revoked and
// none is deleted.
func TestRevokeKeysDryRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, map[string]string{"DRY_RUN": "true"})
	lee, _ := seedLeaver(h)
	h.mb.AddPublicItem(metabasetest.PublicItem{Kind: "dashboard", Name: "Board KPIs", PublicUUID: "11111111-1111-1111-1111-111111111111", MadePublicByID: lee.ID})
	h.start()
	h.command(requester, "disable lee@example.com revoke-keys unshare Left the company")
	card := h.card("lee@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "lee@example.com: API key etl-admin would be revoked (dry run)")
	h.thread(card, "lee@example.com: API key dash-embed would be revoked (dry run)")
	h.thread(card, "lee@example.com: public link of dashboard Board KPIs would be removed (dry run)")
	if n := h.mb.Count("DELETE", "/api/api-key/") + h.mb.Count("DELETE", "/api/dashboard/"); n != 0 {
		t.Errorf("a dry run sent %d DELETEs of keys or links", n)
	}
	if len(h.mb.APIKeys()) != 4 {
		t.Errorf("keys left: %v", keyNames(h))
	}
}

// TestRevokeKeysLeaveDoesNotRestore: a leave with revoke-keys says, where it schedules the
// return, that the revoked keys are not restored.
func TestRevokeKeysLeaveDoesNotRestore(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	seedLeaver(h)
	h.start()
	until, _ := returnTime(72 * 3600e9)
	h.command(requester, "disable lee@example.com until "+until+" revoke-keys Sabbatical")
	card := h.card("lee@example.com")
	h.click(approver, card, "mb_approve")
	h.thread(card, "The API keys this request revoked are not restored.")
	h.thread(card, "lee@example.com: API key etl-admin revoked")
}

// TestRequestFormRevokeKeys: the request form's choice makes the same request as the command.
func TestRequestFormRevokeKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	seedLeaver(h)
	h.start()
	view := h.openForm("disable")
	values := requestForm("lee@example.com", "Left the company", "", "")
	values["mb_form_revoke"] = map[string]slacktest.InputValue{"revoke": {SelectedOption: "revoke-keys"}}
	if errs := h.submit(requester, view, values); errs != nil {
		t.Fatalf("field errors %v", errs)
	}
	card := h.card("lee@example.com")
	if !strings.Contains(card.AllText(), "Approving also deletes 2 API keys") {
		t.Fatalf("the card from the form lacks revoke-keys:\n%s", card.AllText())
	}
	h.click(approver, card, "mb_approve")
	h.thread(card, "lee@example.com: API key etl-admin revoked")
	if got := keyNames(h); !slices.Equal(got, []string{"anns-key", "metabase-bot"}) {
		t.Errorf("keys left %v", got)
	}
}
