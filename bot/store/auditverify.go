package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// AuditBreakReason says how a chain is broken.
type AuditBreakReason string

// The ways a chain breaks.
const (
	// AuditEdited: an entry's content no longer matches its hash, or it was rewritten and
	// re-hashed (the next entry, or a published checkpoint, still holds the original hash).
	AuditEdited AuditBreakReason = "edited"
	// AuditMissing: entries are absent: a gap in the sequence numbers, a tail shorter than the
	// head or a checkpoint, or entries renumbered after a deletion.
	AuditMissing AuditBreakReason = "missing"
	// AuditReordered: an intact entry sits at a sequence number other than the one it was
	// appended with, while the entry it follows is still stored elsewhere.
	AuditReordered AuditBreakReason = "reordered"
)

// AuditBreak is where and why verification failed: the first sequence number that does not
// hold the entry appended there.
type AuditBreak struct {
	Seq    int64
	Reason AuditBreakReason
	// Detail explains the finding in a sentence, for the verify command's output.
	Detail string
}

// String formats the break as "#SEQ REASON: DETAIL".
func (b AuditBreak) String() string {
	return fmt.Sprintf("#%d %s: %s", b.Seq, b.Reason, b.Detail)
}

// AuditCheckpoint is a chain head copied from outside the database: a checkpoint message in
// the audit channel (the full hash) or the "· #42 · 3f9a1c2e" suffix of an audit message (a
// prefix of at least 8 hex digits, a weaker anchor).
type AuditCheckpoint struct {
	Seq int64
	// Hash is the entry's hash or a prefix of it, in lowercase hex.
	Hash string
}

// minCheckpointHex is the shortest hash prefix accepted as an anchor: the 8 digits each audit
// message carries.
const minCheckpointHex = 8

// ParseAuditCheckpoint parses SEQ:HASH, where HASH is 8 to 64 hex digits (a prefix of the
// entry's hash) and SEQ is at least 1. A leading '#' on SEQ is allowed, as Slack shows it.
func ParseAuditCheckpoint(s string) (AuditCheckpoint, error) {
	seqText, hash, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return AuditCheckpoint{}, fmt.Errorf("checkpoint %q: want SEQ:HASH, e.g. 42:3f9a1c2e…", s)
	}
	seq, err := strconv.ParseInt(strings.TrimPrefix(seqText, "#"), 10, 64)
	if err != nil || seq < 1 {
		return AuditCheckpoint{}, fmt.Errorf("checkpoint %q: SEQ must be a sequence number of at least 1", s)
	}
	hash = strings.ToLower(hash)
	if len(hash) < minCheckpointHex || len(hash) > len(GenesisHash) || strings.Trim(hash, "0123456789abcdef") != "" {
		return AuditCheckpoint{}, fmt.Errorf("checkpoint %q: HASH must be %d to %d hex digits", s, minCheckpointHex, len(GenesisHash))
	}
	return AuditCheckpoint{Seq: seq, Hash: hash}, nil
}

// VerifyAuditOptions tunes VerifyAudit.
type VerifyAuditOptions struct {
	// From starts the walk after an archived prefix: entries up to From.Seq are trusted
	// (checked against the archive instead) and may be absent from the database, and entry
	// From.Seq+1 must follow From.Hash, which must be a full hash. The zero value starts at the
	// beginning of the chain.
	From AuditCheckpoint
	// Checkpoints are heads published outside the database; the entry at each Seq must have
	// a hash starting with Hash. A mismatch means the chain up to there was rewritten.
	Checkpoints []AuditCheckpoint
}

// AuditVerification is the outcome of VerifyAudit.
type AuditVerification struct {
	// Count is how many entries were found intact (before the break, if any).
	Count int64
	// Head is the last intact entry (From, or seq 0 and GenesisHash, when there is none).
	Head AuditHead
	// Break is the first fault, nil when the whole chain verifies.
	Break *AuditBreak
}

// VerifyAudit walks the chain in seq order, streaming, and checks that every entry hashes to
// its stored hash, links to its predecessor, and follows it without a gap; that the last one is
// the head the appends recorded; and that it agrees with every checkpoint in opts. It stops at
// the first fault and explains it (AuditBreak). The returned error is for failures to read the
// chain or bad options, never for a broken chain.
//
// The walk covers the entries up to the head as it was when VerifyAudit started; entries
// appended meanwhile are left for the next run.
func (s *Store) VerifyAudit(ctx context.Context, opts VerifyAuditOptions) (_ AuditVerification, err error) {
	ctx, end := s.op(ctx, "verify_audit", false)
	defer end(&err)
	from := opts.From
	if from == (AuditCheckpoint{}) {
		from = AuditCheckpoint{Seq: 0, Hash: GenesisHash}
	} else if from.Seq < 1 || len(from.Hash) != len(GenesisHash) || strings.Trim(from.Hash, "0123456789abcdef") != "" {
		return AuditVerification{}, fmt.Errorf("store: verify audit: the starting checkpoint needs a sequence number of at least 1 and a full hash (64 lowercase hex digits), got %d:%s", from.Seq, from.Hash)
	}
	cps := slices.Clone(opts.Checkpoints)
	slices.SortFunc(cps, func(a, b AuditCheckpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, cp := range cps {
		if cp.Seq < from.Seq {
			return AuditVerification{}, fmt.Errorf("store: verify audit: checkpoint #%d is in the archived prefix (up to #%d): check it against the archive", cp.Seq, from.Seq)
		}
	}

	v := &verifier{s: s, from: from, cps: cps}
	if err := v.run(ctx); err != nil {
		return AuditVerification{}, fmt.Errorf("store: verify audit: %w", err)
	}
	return v.result, nil
}

// verifier is one VerifyAudit run.
type verifier struct {
	s      *Store
	from   AuditCheckpoint
	cps    []AuditCheckpoint // sorted; consumed as the walk passes them
	result AuditVerification
	// before is the entry preceding result.Head, so a break found one entry late (a re-hashed
	// entry) can be pinned on the right one.
	before AuditHead
}

func (v *verifier) run(ctx context.Context) error {
	var head AuditHead
	if err := v.s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&head.Seq, &head.Hash); err != nil {
		return fmt.Errorf("read audit head: %w", err)
	}
	v.result.Head = AuditHead{Seq: v.from.Seq, Hash: v.from.Hash}
	if !v.checkpointsAt(v.result.Head) {
		return nil
	}
	if v.from.Seq > head.Seq {
		v.fail(head.Seq+1, AuditMissing, fmt.Sprintf("the chain's head is #%d, before the starting checkpoint #%d", head.Seq, v.from.Seq))
		return nil
	}
	suspect, err := v.walk(ctx, head.Seq)
	if err != nil {
		return err
	}
	if v.result.Break != nil {
		return nil
	}
	if suspect != nil {
		return v.classify(ctx, *suspect, head)
	}
	last := v.result.Head
	switch {
	case last.Seq < head.Seq:
		v.fail(last.Seq+1, AuditMissing, fmt.Sprintf("the chain ends at #%d but the head recorded by the appends is #%d: entries #%d to #%d are absent", last.Seq, head.Seq, last.Seq+1, head.Seq))
	case last.Hash != head.Hash:
		v.failLast(AuditEdited, fmt.Sprintf("entry #%d's hash %s differs from the head recorded when it was appended (%s): the entry or the head was rewritten", last.Seq, last.Hash, head.Hash))
	case len(v.cps) > 0:
		cp := v.cps[0]
		v.fail(last.Seq+1, AuditMissing, fmt.Sprintf("the chain ends at #%d but checkpoint #%d was published: entries #%d to #%d are absent", last.Seq, cp.Seq, last.Seq+1, cp.Seq))
	default:
		return v.beyondHead(ctx)
	}
	return nil
}

// beyondHead records a break at the first entry stored past the head, if there is one. An
// append moves the head in the transaction that inserts its entry, so no append leaves an
// entry there: it was added or renumbered by hand (at any seq, however large), or the head was
// moved back. The head is read in the same statement, so entries appended since the walk began
// are not mistaken for one.
func (v *verifier) beyondHead(ctx context.Context) error {
	var (
		seq  int64
		head int64
	)
	err := v.s.db.QueryRowContext(ctx, `SELECT l.seq, h.seq FROM audit_log l JOIN audit_head h ON h.id = 1
		WHERE l.seq > h.seq ORDER BY l.seq LIMIT 1`).Scan(&seq, &head)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	v.fail(seq, AuditEdited, fmt.Sprintf("entry #%d is stored beyond the head #%d recorded by the appends, which never write past it: it was added or renumbered by hand, or the head was moved back", seq, head))
	return nil
}

// walk streams the entries after v.from up to headSeq, accepting each intact one. It returns
// the first entry that is not intact, for classify (after the query is closed: an in-memory
// SQLite store has a single connection), or nil.
func (v *verifier) walk(ctx context.Context, headSeq int64) (*AuditEntry, error) {
	rows, err := v.s.db.QueryContext(ctx, v.s.rebind(`SELECT seq, at, event, prev_hash, hash FROM audit_log
		WHERE seq > ? AND seq <= ? ORDER BY seq`), v.from.Seq, headSeq)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanAuditEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		want := v.result.Head.Seq + 1
		if e.Seq != want {
			v.fail(want, AuditMissing, gapDetail(want, e.Seq))
			return nil, nil
		}
		if e.PrevHash != v.result.Head.Hash || AuditHash(e.PrevHash, e.Seq, e.At, e.Event) != e.Hash {
			return &e, nil
		}
		v.before = v.result.Head
		v.result.Head = AuditHead{Seq: e.Seq, Hash: e.Hash}
		v.result.Count++
		if !v.checkpointsAt(v.result.Head) {
			return nil, nil
		}
	}
	return nil, rows.Err()
}

// checkpointsAt checks the checkpoints at h.Seq against h, consuming them. It records a break
// and returns false on a mismatch.
func (v *verifier) checkpointsAt(h AuditHead) bool {
	for len(v.cps) > 0 && v.cps[0].Seq <= h.Seq {
		cp := v.cps[0]
		v.cps = v.cps[1:]
		if cp.Seq == h.Seq && !strings.HasPrefix(h.Hash, cp.Hash) {
			v.failLast(AuditEdited, fmt.Sprintf("entry #%d's hash is %s but checkpoint #%d says %s: the chain up to #%d was rewritten after the checkpoint was published", h.Seq, h.Hash, cp.Seq, cp.Hash, h.Seq))
			return false
		}
	}
	return true
}

// classify explains why e, stored at the next expected seq, is not the entry appended there.
func (v *verifier) classify(ctx context.Context, e AuditEntry, head AuditHead) error {
	want := v.result.Head
	if AuditHash(e.PrevHash, e.Seq, e.At, e.Event) == e.Hash {
		// e is intact where it is, so what precedes it is not what it was chained to.
		if want.Seq == v.from.Seq {
			v.fail(e.Seq, AuditEdited, fmt.Sprintf("entry #%d follows %s, not the starting hash %s", e.Seq, e.PrevHash, want.Hash))
			return nil
		}
		v.failLast(AuditEdited, fmt.Sprintf("entry #%d was rewritten and re-hashed: entry #%d still links to its original hash %s", want.Seq, e.Seq, e.PrevHash))
		return nil
	}
	var maxSeq sql.NullInt64
	if err := v.s.db.QueryRowContext(ctx, `SELECT MAX(seq) FROM audit_log`).Scan(&maxSeq); err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	written, found, err := writtenSeq(ctx, e, max(maxSeq.Int64, head.Seq))
	if err != nil {
		return err
	}
	if !found {
		v.fail(e.Seq, AuditEdited, fmt.Sprintf("entry #%d's content does not match its hash %s", e.Seq, e.Hash))
		return nil
	}
	predecessor := e.PrevHash == GenesisHash
	if !predecessor {
		var seq int64
		err := v.s.db.QueryRowContext(ctx, v.s.rebind(`SELECT seq FROM audit_log WHERE hash = ? LIMIT 1`), e.PrevHash).Scan(&seq)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read audit log: %w", err)
		}
		predecessor = err == nil
	}
	if predecessor {
		v.fail(e.Seq, AuditReordered, fmt.Sprintf("the entry stored as #%d was appended as #%d", e.Seq, written))
	} else {
		v.fail(e.Seq, AuditMissing, fmt.Sprintf("the entry stored as #%d was appended as #%d and the entry before it is gone: entries were deleted and the rest renumbered", e.Seq, written))
	}
	return nil
}

// writtenSearch bounds how far from its current sequence number writtenSeq looks for the one an
// entry was appended with: entries renumbered by more (a deletion of that many before them) are
// reported as edited rather than renumbered, which is still a break. Without a bound, a row at an
// enormous seq (written by hand) would make the search run for ever.
const writtenSearch = 1 << 16

// writtenSeq finds the sequence number e was appended with (the one its hash covers), trying
// the numbers nearest its current one first, up to writtenSearch away and never past maxSeq. It
// costs one hash per candidate, runs once per verification, at the break, and stops with ctx's
// error when ctx ends.
func writtenSeq(ctx context.Context, e AuditEntry, maxSeq int64) (int64, bool, error) {
	for d := int64(1); d <= writtenSearch && (e.Seq-d >= 1 || e.Seq+d <= maxSeq); d++ {
		if d%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return 0, false, err
			}
		}
		for _, seq := range []int64{e.Seq + d, e.Seq - d} {
			if seq >= 1 && seq <= maxSeq && AuditHash(e.PrevHash, seq, e.At, e.Event) == e.Hash {
				return seq, true, nil
			}
		}
	}
	return 0, false, ctx.Err()
}

// fail records a break at seq.
func (v *verifier) fail(seq int64, reason AuditBreakReason, detail string) {
	v.result.Break = &AuditBreak{Seq: seq, Reason: reason, Detail: detail}
}

// failLast records a break at the last accepted entry, which turned out not to be intact, and
// takes it back from the count.
func (v *verifier) failLast(reason AuditBreakReason, detail string) {
	bad := v.result.Head
	if bad.Seq > v.from.Seq {
		v.result.Head = v.before
		v.result.Count--
	}
	v.fail(bad.Seq, reason, detail)
}

func gapDetail(want, got int64) string {
	if got == want+1 {
		return fmt.Sprintf("entry #%d is absent", want)
	}
	return fmt.Sprintf("entries #%d to #%d are absent", want, got-1)
}
