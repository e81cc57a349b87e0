package access

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"
)

// ToCheckpoint posts the head of the hash-chained audit log to the audit trail (Notice.Checkpoint).
// Unlike the other kinds it never goes through the outbox: a checkpoint is posted when it is taken.
const ToCheckpoint Kind = "checkpoint"

const (
	// maxCheckpointPoll bounds how long after a period ends a replica notices it: each replica
	// asks the store that often whether the next checkpoint is due (and one claims it).
	maxCheckpointPoll = time.Minute
	// minCheckpointPoll keeps short periods (tests) from turning the poll into a busy loop.
	minCheckpointPoll = 100 * time.Millisecond
)

// Checkpoint is the audit log's head as a checkpoint message publishes it, so a copy of the
// chain lives outside the database: `metabase-bot audit verify --checkpoint SEQ:HASH` fails on a
// database rewritten after it was posted (docs/audit.md). Checkpoints are messages, not entries.
type Checkpoint struct {
	// Seq and Hash are the newest entry's sequence number and full hash.
	Seq  int64
	Hash string
	// At is when the head was read.
	At time.Time
	// Shutdown marks the checkpoint a process posts as it stops; the others are periodic.
	Shutdown bool
}

// checkpointLoop posts the periodic checkpoint. Every replica polls; the store's compare-and-set
// (ClaimCheckpoint) lets exactly one of them post per period.
func (s timers) checkpointLoop(ctx context.Context) {
	if s.checkpointEvery <= 0 {
		return
	}
	t := time.NewTicker(checkpointPoll(s.checkpointEvery))
	defer t.Stop()
	for {
		s.periodicCheckpoint(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkpointPoll is how often a replica asks whether a checkpoint is due: a tenth of the period,
// within [minCheckpointPoll, maxCheckpointPoll], so a daily checkpoint is at most a minute late.
func checkpointPoll(every time.Duration) time.Duration {
	return min(max(every/10, minCheckpointPoll), maxCheckpointPoll)
}

// periodicCheckpoint posts the head if this replica wins the period's claim. An empty chain has
// nothing to anchor and claims nothing, so the first checkpoint follows the first entry within a
// poll instead of a period later.
func (s timers) periodicCheckpoint(ctx context.Context) {
	head, err := s.st.AuditHead(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WithError(err).Error("Could not read the audit log's head for a checkpoint")
		}
		return
	}
	if head.Seq == 0 {
		return
	}
	now := s.now()
	head, won, err := s.st.ClaimCheckpoint(ctx, now, s.checkpointEvery)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WithError(err).Error("Could not claim the audit checkpoint")
		}
		return
	}
	if !won {
		return
	}
	// Detached from shutdown, like an outbox delivery: the claim is spent, so the post is worth
	// finishing; the bound keeps it short.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(maxDeliveryTimeout, s.exec.OutboxLease/2))
	defer cancel()
	checkpoints(s).postCheckpoint(pctx, Checkpoint{Seq: head.Seq, Hash: head.Hash, At: now})
}

// CheckpointAtShutdown posts the audit log's head as this process stops, so the audit trail
// holds the chain as it was left. Call it after Drain, so the checkpoint follows the audit
// messages it covers; ctx bounds it. Nothing is posted when checkpoints are off (no audit trail
// to post to) or the chain is empty.
func (s *Service) CheckpointAtShutdown(ctx context.Context) {
	if s.checkpointEvery <= 0 {
		return
	}
	head, err := s.st.AuditHead(ctx)
	if err != nil {
		s.log.WithError(err).Error("Could not read the audit log's head for the shutdown checkpoint")
		return
	}
	if head.Seq == 0 {
		return
	}
	(checkpoints{s}).postCheckpoint(ctx, Checkpoint{Seq: head.Seq, Hash: head.Hash, At: s.now(), Shutdown: true})
}

// postCheckpoint tells the Notifier once. A failed post is not retried: the claim is spent, and
// retrying a post that timed out after Slack took it would publish the same period twice. The
// next checkpoint (the next period's, or the shutdown's) anchors the chain again.
func (s checkpoints) postCheckpoint(ctx context.Context, c Checkpoint) {
	log := s.log.WithFields(logrus.Fields{"audit_seq": c.Seq, "audit_hash": c.Hash, "shutdown": c.Shutdown})
	if _, err := s.notifier.Tell(ctx, Notice{Kind: ToCheckpoint, Checkpoint: &c}); err != nil {
		log.WithError(err).Error("Could not post the audit checkpoint; the next one anchors the chain again")
		return
	}
	log.Info("Posted an audit checkpoint")
}
