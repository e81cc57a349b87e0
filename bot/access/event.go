package access

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/metabase-bot/metabase-bot/bot/approval"
	"github.com/metabase-bot/metabase-bot/bot/store"
)

// EventType says what happened to a request. Stored in outbox rows: never rename one.
type EventType string

// The events the core tells about.
const (
	// Requested: a request was created and waits for approvers.
	Requested EventType = "requested"
	// Voted: an approval was recorded that did not reach the quorum.
	Voted EventType = "voted"
	// VoteWithdrawn: the approval of Actor was dropped when the quorum was checked, because they
	// are no longer an approver.
	VoteWithdrawn EventType = "vote_withdrawn"
	// Approved: the quorum was reached and execution started.
	Approved EventType = "approved"
	// Denied: an approver refused the request.
	Denied EventType = "denied"
	// Cancelled: the requester withdrew the request.
	Cancelled EventType = "cancelled"
	// Withdrawn: the system cancelled a request whose card could not be posted (Code says why).
	Withdrawn EventType = "withdrawn"
	// Retrying: an approver sent the failed targets back to execution.
	Retrying EventType = "retrying"
	// Finished: an execution ended; the request's state says how (succeeded, partial, failed).
	Finished EventType = "finished"
	// Reminded: a pending request is still waiting; approvers are pinged.
	Reminded EventType = "reminded"
	// Expired: a pending request passed its deadline.
	Expired EventType = "expired"
	// ReturnScheduled: a leave's automatic return was created.
	ReturnScheduled EventType = "return_scheduled"
	// ReturnExtended: a retry of a leave added targets to its scheduled return (Added lists them).
	ReturnExtended EventType = "return_extended"
	// ReturnCancelled: an approver cancelled a scheduled return.
	ReturnCancelled EventType = "return_cancelled"
	// ReturnStarted: a scheduled return's date came and its execution started.
	ReturnStarted EventType = "return_started"
)

// Kind is where a notice goes. Stored in the database as the outbox row's kind: never rename one.
type Kind string

// The destinations of notices.
const (
	// ToCard posts the request's card; the notifier returns its id.
	ToCard Kind = "card"
	// ToCardUpdate re-renders the card from the request as it is when delivered.
	ToCardUpdate Kind = "card_update"
	// ToThread replies under the card.
	ToThread Kind = "thread"
	// ToAudit appends a message to the audit trail.
	ToAudit Kind = "audit"
	// ToRequester tells the requester directly (when the card could not be posted).
	ToRequester Kind = "requester"
	// kindScheduleReturn is an internal row written by versions that created a leave's return
	// at delivery time; it is still honoured so an upgrade loses no return.
	kindScheduleReturn = "schedule_return"
)

// Event is something that happened to a request, as data: the chat side words it when it
// delivers. Request is the request as it was at that moment, so a message describes the moment
// it speaks of even when it is delivered after later changes.
type Event struct {
	Type EventType `json:"type"`
	// Actor is the chat user id who caused it; empty for the system (timers, withdrawals).
	Actor string    `json:"actor,omitempty"`
	At    time.Time `json:"at"`
	// Reason is the deny reason of Denied.
	Reason string `json:"reason,omitempty"`
	// Code is the chat service's error code of Withdrawn.
	Code string `json:"code,omitempty"`
	// By is the request that caused it: the disable whose approval cancelled a return.
	By string `json:"by,omitempty"`
	// Removed are the targets a ReturnCancelled took out of the return (all of them when it
	// cancelled it).
	Removed []approval.Target `json:"removed,omitempty"`
	// Added are the targets ReturnExtended added.
	Added   []approval.Target `json:"added,omitempty"`
	Request approval.Request  `json:"request"`
	// Watch is what the reactivation watch found, on its events (watch.go).
	Watch *Finding `json:"watch,omitempty"`
}

// AuditName is the event's name in the audit trail (channel, logs and, later, the hash chain):
// the words auditors search for, stable across versions.
func (e Event) AuditName() string {
	r := e.Request
	if e.Watch != nil {
		return watchAuditName(e)
	}
	if name, ok := breakGlassAuditName(e); ok {
		return name
	}
	switch e.Type {
	case Voted:
		return fmt.Sprintf("approval %d of %d", len(r.Approvals), r.RequiredApprovals)
	case Withdrawn:
		return "cancelled"
	case VoteWithdrawn:
		return "approval withdrawn"
	case Retrying:
		return "retry"
	case Finished:
		switch r.State {
		case approval.Succeeded:
			return "executed"
		case approval.Partial:
			return "partially executed"
		}
		return "failed"
	}
	return strings.ReplaceAll(string(e.Type), "_", " ")
}

// Legacy is an outbox row queued by a version that stored rendered text: it is delivered as
// written, for one release, so an upgrade loses none of the messages still waiting.
type Legacy struct {
	Text string `json:"text,omitempty"`
	// Buttons are action ids shown under a thread reply; their value is the request id.
	Buttons []string `json:"buttons,omitempty"`
	// Event names the audit event, for logs.
	Event string `json:"event,omitempty"`
}

// Notice is one thing to deliver: an event (or a legacy text) to one destination, with the
// request as it is now for the card, which always shows the current state.
type Notice struct {
	Kind    Kind
	Event   *Event
	Legacy  *Legacy
	Request approval.Request
	// AuditSeq and AuditHash identify an audit notice's entry in the hash-chained audit log, so
	// the message can carry it and a database edited later no longer matches what chat holds.
	AuditSeq  int64
	AuditHash string
	// Checkpoint is the head a ToCheckpoint notice publishes (checkpoint.go).
	Checkpoint *Checkpoint
}

// payload is what an outbox row holds: an event, or the fields an older version wrote (whose
// "event" key was the audit event's name, hence another key here).
type payload struct {
	Event *Event `json:"happened,omitempty"`
	Legacy
}

func notice(kind Kind, e Event) store.Outbox {
	p, err := json.Marshal(payload{Event: &e})
	if err != nil {
		// An Event holds only plain values; failing to encode one is a programming error.
		panic(fmt.Sprintf("access: encode %s event: %v", e.Type, err))
	}
	return store.Outbox{RequestID: e.Request.ID, Kind: string(kind), Payload: p}
}

// decodeNotice reads an outbox row. A row without an event is a legacy row.
func decodeNotice(row store.Outbox) (Notice, error) {
	n := Notice{Kind: Kind(row.Kind), AuditSeq: row.AuditSeq, AuditHash: row.AuditHash}
	if len(row.Payload) == 0 {
		n.Legacy = &Legacy{}
		return n, nil
	}
	var p payload
	if err := json.Unmarshal(row.Payload, &p); err != nil {
		return n, err
	}
	if p.Event != nil {
		n.Event = p.Event
	} else {
		n.Legacy = &p.Legacy
	}
	return n, nil
}

// tell builds the outbox rows of one event: one per destination, in the order given. The audit
// row also carries the event's entry in the hash-chained audit log, which the store appends in
// the same transaction as the change (docs/audit.md): the chain is kept whether or not an audit
// channel is configured.
func (s *Service) tell(e Event, kinds ...Kind) []store.Outbox {
	out := make([]store.Outbox, 0, len(kinds))
	for _, k := range kinds {
		if k == ToRequester && e.Request.Requester == RequesterChatDeactivation {
			continue // the bot asked by itself: nobody to tell in private; the audit trail tells
		}
		row := notice(k, e)
		if k == ToAudit {
			s.logAudit(e)
			row.Audit = auditEntry(e)
		}
		out = append(out, row)
	}
	return out
}

// auditTarget is one target as the audit log records it.
type auditTarget struct {
	Instance string `json:"instance"`
	UserID   int    `json:"user_id"`
	Email    string `json:"email"`
}

// auditRecord is an event as the audit log keeps it: who asked, who acted, about whom, and what
// happened. Its top-level request_id, action and actor are the columns auditors filter on.
type auditRecord struct {
	RequestID string        `json:"request_id"`
	Action    string        `json:"action"`
	Change    string        `json:"change"`
	Actor     string        `json:"actor"`
	Requester string        `json:"requester"`
	Targets   []auditTarget `json:"targets"`
	Detail    string        `json:"detail,omitempty"`
	DryRun    bool          `json:"dry_run"`
	// BreakGlass marks every event of a break-glass action (breakglass.go); absent on the others,
	// so the records written before it existed keep their canonical form.
	BreakGlass bool `json:"break_glass,omitempty"`
}

// auditEntry is the canonical JSON of e's audit record.
func auditEntry(e Event) json.RawMessage {
	r := e.Request
	targets := r.Targets
	switch {
	case e.Type == ReturnExtended:
		targets = e.Added
	case e.Type == ReturnCancelled && len(e.Removed) > 0:
		targets = e.Removed
	}
	rec := auditRecord{RequestID: r.ID, Action: e.AuditName(), Change: string(r.Action), Actor: e.Actor,
		Requester: r.Requester, Targets: make([]auditTarget, len(targets)), Detail: auditDetail(e), DryRun: r.DryRun,
		BreakGlass: r.IsBreakGlass()}
	for i, t := range targets {
		rec.Targets[i] = auditTarget{Instance: t.InstanceName(), UserID: t.UserID, Email: t.Email}
	}
	raw, err := store.CanonicalJSON(rec)
	if err != nil {
		// The record holds strings, small integers and booleans only; failing is a programming error.
		panic(fmt.Sprintf("access: canonical audit record: %v", err))
	}
	return raw
}

// auditDetail is what the audit log says about an event besides its name, as plain text.
func auditDetail(e Event) string {
	r := e.Request
	if e.Watch != nil {
		return watchAuditDetail(e)
	}
	switch e.Type {
	case Requested, BrokeGlass:
		return joinNonEmpty(r.Reason, HandoverSummary(r))
	case Denied:
		return e.Reason
	case Withdrawn:
		return "card not posted: " + e.Code
	case ReturnCancelled:
		if e.By != "" {
			return "superseded by " + e.By
		}
	case Finished:
		done, skipped, failed := r.Counts()
		return joinNonEmpty(fmt.Sprintf("done %d, skipped %d, failed %d", done, skipped, failed), HandoverResultSummary(r))
	case ReturnScheduled, ReturnExtended, ReturnStarted:
		return "return at " + r.NotBefore.UTC().Format(time.RFC3339)
	}
	return ""
}

// logAudit writes an audit event to the structured log as well, so the trail survives in the
// logs when the audit channel is unset or unreachable.
func (s *Service) logAudit(e Event) {
	r := e.Request
	s.log.WithFields(map[string]any{
		"audit_event": e.AuditName(), "request_id": r.ID, "action": string(r.Action), "state": string(r.State),
		"targets": TargetEmails(r), "requester": r.Requester, "actor": e.Actor, "dry_run": r.DryRun,
	}).Info("Audit event")
}

// TargetEmails lists a request's target emails, for logs.
func TargetEmails(r approval.Request) []string {
	out := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		out[i] = t.Email
	}
	return out
}
