package main

import (
	"strconv"
	"testing"
)

// TestDryRunProcessNeverWrites: DRY_RUN is a property of the process too. A request created
// before a restart into dry run is executed without any Metabase write, and its outcome says
// DRY RUN (so it keeps no access record and schedules no return).
func TestDryRunProcessNeverWrites(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	jane := h.addJane()
	in := h.start()
	until, _ := returnTime(72 * 3600e9)
	h.command(requester, "disable jane@example.com until "+until+" Sabbatical")
	card := h.card("jane@example.com")
	in.stop(t)

	h.env["DRY_RUN"] = "true"
	h.start()
	h.click(approver, card, "mb_approve")
	h.thread(card, "DRY RUN")
	h.audit("executed", "DRY RUN")
	if n := h.exactCount("DELETE", "/api/user/"+strconv.Itoa(jane.ID)); n != 0 {
		t.Fatalf("a process in dry run sent %d DELETEs", n)
	}
	if u, _ := h.mb.UserByID(jane.ID); !u.Active {
		t.Fatal("jane was deactivated by a process in dry run")
	}
	if n := h.audits("return scheduled"); n != 0 {
		t.Fatalf("a dry run scheduled %d returns, want none", n)
	}
}
