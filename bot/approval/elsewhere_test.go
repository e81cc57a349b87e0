package approval

import (
	"errors"
	"testing"
	"time"
)

func TestNoteDisabledElsewhere(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	r := Request{ID: "MB-1", Action: Disable, State: Pending, Targets: []Target{{UserID: 7}, {UserID: 8, Unresolved: true}}}
	added, err := r.NoteDisabledElsewhere([]UserKey{{Instance: DefaultInstance, ID: 7}, {Instance: DefaultInstance, ID: 8}, {Instance: DefaultInstance, ID: 9}}, now)
	if err != nil || len(added) != 1 || added[0].ID != 7 || len(r.DisabledElsewhere) != 1 {
		t.Fatalf("first note = %v, %v, %v; want only the resolved target 7", added, err, r.DisabledElsewhere)
	}
	if added, err := r.NoteDisabledElsewhere([]UserKey{{Instance: DefaultInstance, ID: 7}}, now); err != nil || len(added) != 0 {
		t.Fatalf("noting 7 again = %v, %v; want nothing new", added, err)
	}
	r.State = Approved
	if _, err := r.NoteDisabledElsewhere([]UserKey{{Instance: DefaultInstance, ID: 7}}, now); !errors.Is(err, ErrNotPending) {
		t.Fatalf("on an approved request: %v, want ErrNotPending", err)
	}
	e := Request{ID: "MB-2", Action: Enable, State: Pending, Targets: []Target{{UserID: 7}}}
	if _, err := e.NoteDisabledElsewhere([]UserKey{{Instance: DefaultInstance, ID: 7}}, now); !errors.Is(err, ErrInvalidTransition) {
		t.Fatalf("on an enable: %v, want ErrInvalidTransition", err)
	}
}
