package bot

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/metabase-bot/metabase-bot/bot/access"
	"github.com/metabase-bot/metabase-bot/bot/approval"
)

const (
	// homeWatch is how long after opening their Home a person's Home is kept up to date.
	homeWatch = 24 * time.Hour
	// defaultHomeEvery is the least time between two publishes of one person's Home.
	defaultHomeEvery = 10 * time.Second
	// homeOff is logged once, at the first not_enabled answer of views.publish.
	homeOff = "Home tab is off in the Slack app: use /metabase pending"
)

// homes is what the bot published on people's Home tabs, per person. It is the record a click
// from a Home view is checked against (originOf): only a view the bot published to the person
// clicking, showing the request the button names, counts. It is this process's memory: after a
// restart, or in another replica, a click on a Home drawn before is refused until the person
// opens their Home again, which publishes it afresh.
type homes struct {
	every time.Duration
	now   func() time.Time
	// ctx bounds every refresh; stop cancels it at shutdown, so a refresh waiting for its turn
	// does not hold the process.
	ctx  context.Context
	stop context.CancelFunc
	// slots bounds concurrent publishes apart from the envelope handlers' slots.
	slots chan struct{}

	mu     sync.Mutex
	off    bool
	people map[string]*home
	links  map[string]string // request id -> permalink of its card
	budget budget            // views.publish calls, under its tier

	// groupMu makes Homes drawn at once share one read of the approver group.
	groupMu sync.Mutex
}

// budget is a token bucket that keeps this process's views.publish calls under the method's
// tier (Tier 4, 100+ a minute: https://api.slack.com/methods/views.publish), with the short
// burst Slack tolerates, so a change seen by many people is drawn for them in turn rather than
// refused with HTTP 429.
type budget struct {
	tokens float64
	at     time.Time
}

const (
	// publishPerMinute stays under Tier 4's floor of 100 a minute.
	publishPerMinute = 90
	// publishBurst is how many publishes may go at once before they are spaced.
	publishBurst = 20
)

// take spends one call at now and returns how long to wait for it.
func (b *budget) take(now time.Time) time.Duration {
	if b.at.IsZero() {
		b.tokens, b.at = publishBurst, now
	}
	if now.After(b.at) {
		b.tokens = min(publishBurst, b.tokens+now.Sub(b.at).Minutes()*publishPerMinute)
		b.at = now
	}
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / publishPerMinute * float64(time.Minute))
}

// home is one person's Home as published.
type home struct {
	opened    time.Time       // when they last opened it
	viewID    string          // the view views.publish answered with
	shown     map[string]bool // request ids on it
	approver  bool            // they were an approver when it was drawn
	published time.Time       // the turn of the last publish planned: the next comes homeEvery after it
	answered  time.Time       // when the last views.publish answered, which a planned turn never precedes by less than homeEvery
	queued    bool            // a refresh is waiting for its turn
	// publishing is closed when the views.publish under way answers (nil when none is): a click
	// on the view it published can arrive before the bot has recorded that view.
	publishing chan struct{}
}

func newHomes(every time.Duration) *homes {
	if every <= 0 {
		every = defaultHomeEvery
	}
	ctx, stop := context.WithCancel(context.Background())
	return &homes{every: every, now: time.Now, ctx: ctx, stop: stop, slots: make(chan struct{}, maxHomesInFlight),
		people: map[string]*home{}, links: map[string]string{}}
}

// homeGroupAge is how old a read of the approver group a Home may be drawn from. Drawing Homes then
// costs at most one usergroups.users.list (Tier 2, about 20 a minute) per homeGroupAge, and the
// rest of that budget stays with the checks made when someone clicks, which always read it anew.
const homeGroupAge = 30 * time.Second

// maxLinks bounds the remembered card links.
const maxLinks = 10000

// maxHomesInFlight bounds concurrent Home publishes (each reads the store and calls Slack).
const maxHomesInFlight = 4

// shows reports whether the bot published view to user and it shows request id.
func (h *homes) shows(user, view, id string) bool {
	if h == nil || view == "" {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.people[user]
	return p != nil && p.viewID == view && p.shown[id]
}

// settle waits, within ctx, for a publish of user's Home under way to be recorded.
func (h *homes) settle(ctx context.Context, user string) {
	h.mu.Lock()
	var ch chan struct{}
	if p := h.people[user]; p != nil {
		ch = p.publishing
	}
	h.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

// watch records that user is looking at their Home (they opened it, or clicked on it), so it is
// kept up to date for homeWatch; a Home this process never drew (drawn before a restart, or by
// another replica) is then drawn afresh. It reports false once the Home tab is off.
func (h *homes) watch(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.off {
		return false
	}
	p := h.people[user]
	if p == nil {
		p = &home{}
		h.people[user] = p
	}
	p.opened = h.now()
	return true
}

// homeOpened handles app_home_opened: the person's Home is published now (or at its next turn).
func (b *Bot) homeOpened(ctx context.Context, ev *slackevents.AppHomeOpenedEvent) {
	if ev.Tab != "home" || ev.User == "" {
		return
	}
	if !b.home.watch(ev.User) {
		b.logger(ctx).WithField("slack_user_id", ev.User).Debug("Not publishing a Home tab: the Home tab is off in the Slack app")
		return
	}
	b.refreshHome(ev.User)
}

// RequestChanged refreshes, in the background, the Home tabs a change of r concerns; wire it to
// the Notifier with OnChange. It does not block the delivery that tells it.
func (b *Bot) RequestChanged(_ context.Context, r approval.Request) { b.requestChanged(r) }

// requestChanged refreshes the Homes a change of r concerns.
func (b *Bot) requestChanged(r approval.Request) {
	for _, u := range b.home.concerned(r) {
		b.refreshHome(u)
	}
}

// concerned returns the people whose Home a change of r concerns: those it shows r (or the leave
// of a return), approvers' for a request waiting for a decision or failed, and its requester's.
// Only Homes opened within homeWatch are kept up to date; older ones are forgotten here.
func (h *homes) concerned(r approval.Request) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.off {
		return nil
	}
	now := h.now()
	forApprovers := r.State == approval.Pending || r.State == approval.Failed || r.State == approval.Partial
	var users []string
	for u, p := range h.people {
		if now.Sub(p.opened) > homeWatch {
			delete(h.people, u)
			continue
		}
		if p.shown[r.ID] || (r.ParentID != "" && p.shown[r.ParentID]) || (p.approver && forApprovers) || u == r.Requester {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	return users
}

// refreshHome publishes user's Home in the background: now, or once at the end of its homeEvery
// turn when it was published less than that ago, and within the tier's budget. Refreshes asked
// while one is waiting are folded into it. It never blocks: a refresh waiting for its turn holds
// a goroutine, not one of the handlers' slots.
func (b *Bot) refreshHome(user string) {
	h := b.home
	h.mu.Lock()
	p := h.people[user]
	if h.off || p == nil || p.queued || h.ctx.Err() != nil {
		h.mu.Unlock()
		return
	}
	p.queued = true
	now := h.now()
	turn := p.published.Add(h.every)
	if turn.Before(now) {
		turn = now
	}
	p.published = turn
	wait := max(turn.Sub(now), h.budget.take(now))
	h.mu.Unlock()
	b.inflight.Add(1)
	go func() {
		defer b.inflight.Done()
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-h.ctx.Done():
			}
		}
		// A turn is planned from the previous turn, but that publish may have answered later
		// (its desk read, a slot, Slack): the spacing Slack sees is from the answer, so wait out
		// what remains of homeEvery after it.
		h.mu.Lock()
		rest := p.answered.Add(h.every).Sub(h.now())
		h.mu.Unlock()
		if rest > 0 {
			t := time.NewTimer(rest)
			defer t.Stop()
			select {
			case <-t.C:
			case <-h.ctx.Done():
			}
		}
		select {
		case h.slots <- struct{}{}:
		case <-h.ctx.Done():
			return
		}
		defer func() { <-h.slots }()
		h.mu.Lock()
		p.queued = false
		h.mu.Unlock()
		if h.ctx.Err() != nil {
			return
		}
		defer func() {
			h.mu.Lock()
			p.answered = h.now()
			p.published = maxTime(p.published, p.answered)
			h.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(h.ctx, eventTimeout)
		defer cancel()
		defer func() {
			if v := recover(); v != nil {
				b.log.WithField("panic", fmt.Sprint(v)).Error("Home publish panicked; the bot keeps serving")
			}
		}()
		b.publishHome(ctx, user)
	}()
}

// publishHome draws user's desk and publishes it with views.publish
// (https://api.slack.com/methods/views.publish), paced under its tier once Slack has rate
// limited it. not_enabled stops every later publish: the app's Home tab is turned off.
func (b *Bot) publishHome(ctx context.Context, user string) {
	log := b.log.WithField("slack_user_id", user)
	approver, err := b.homeApprover(ctx, user)
	if err != nil {
		log.WithError(err).Warn("Could not read the approver group for a Home tab")
		return
	}
	d, err := b.core.DeskAs(ctx, user, approver)
	if err != nil {
		log.WithError(err).Warn("Could not read a person's desk for their Home tab")
		return
	}
	blocks := b.v.deskBlocks(d, func(r approval.Request) string { return b.cardLink(ctx, r) }, true, maxHomeBlocks)
	req := slack.PublishViewContextRequest{UserID: user, View: slack.HomeTabViewRequest{
		Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}, CallbackID: "mb_home"}}
	done := make(chan struct{})
	b.home.mu.Lock()
	if p := b.home.people[user]; p != nil {
		p.publishing = done
	}
	b.home.mu.Unlock()
	defer func() {
		b.home.mu.Lock()
		if p := b.home.people[user]; p != nil && p.publishing == done {
			p.publishing = nil
		}
		b.home.mu.Unlock()
		close(done)
	}()
	var resp *slack.ViewResponse
	err = b.pacer.call(ctx, "views.publish", func() error {
		var err error
		resp, err = b.slack.PublishViewContext(ctx, req)
		return err
	})
	if err != nil {
		b.cfg.Metrics.slackError("views.publish", err)
		if slackCode(err) == "not_enabled" {
			b.home.mu.Lock()
			first := !b.home.off
			b.home.off, b.home.people = true, map[string]*home{}
			b.home.mu.Unlock()
			if first {
				b.log.Warn(homeOff)
			}
			return
		}
		log.WithField("error_code", slackCode(err)).Warn("Could not publish a Home tab")
		if rateLimited(err) {
			// Drawn again at its next turn, after the pacer's wait.
			b.refreshHome(user)
		}
		return
	}
	shown := map[string]bool{}
	for _, id := range d.Requests() {
		shown[id] = true
	}
	b.home.mu.Lock()
	if p := b.home.people[user]; p != nil {
		p.viewID, p.shown, p.approver = resp.View.ID, shown, d.Approver
	}
	b.home.mu.Unlock()
	log.WithFields(logrus.Fields{"view_id": resp.View.ID, "requests": len(shown)}).Debug("Published a Home tab")
}

// homeApprover reports whether user approves, for drawing their Home: APPROVER_USERS, or the
// approver group as last read, by a click's check or a Home, if that was at most homeGroupAge
// ago, else read now. A click always reads the group anew, and its read is what the Home the
// click redraws is drawn from.
func (b *Bot) homeApprover(ctx context.Context, user string) (bool, error) {
	if slices.Contains(b.cfg.ApproverUsers, user) {
		return true, nil
	}
	if b.cfg.ApproverGroup == "" {
		return false, nil
	}
	b.home.groupMu.Lock()
	defer b.home.groupMu.Unlock()
	members, at := b.dir.lastRead(b.cfg.ApproverGroup)
	if at.IsZero() || time.Since(at) >= homeGroupAge {
		var err error
		if members, err = b.dir.groupMembers(ctx, b.cfg.ApproverGroup); err != nil {
			return false, err
		}
	}
	return slices.Contains(members, user), nil
}

// cardLink is a link to r's card (chat.getPermalink, remembered: a card's link never changes), or
// "" while it has none.
func (b *Bot) cardLink(ctx context.Context, r approval.Request) string {
	if r.MessageTS == "" || r.ChannelID == "" {
		return ""
	}
	b.home.mu.Lock()
	link, ok := b.home.links[r.ID]
	b.home.mu.Unlock()
	if ok {
		return link
	}
	link, err := b.slack.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: r.ChannelID, Ts: r.MessageTS})
	if err != nil || !safeLink(link) {
		return ""
	}
	b.home.mu.Lock()
	if len(b.home.links) >= maxLinks {
		// Links of requests long decided are not shown again; start afresh rather than grow.
		clear(b.home.links)
	}
	b.home.links[r.ID] = link
	b.home.mu.Unlock()
	return link
}

// pending answers `pending`: the caller's desk, privately, with links to the cards. Approvers may
// ask anywhere; others where they may make requests, and see only their own.
func (b *Bot) pending(ctx context.Context, sc slack.SlashCommand) {
	d, err := b.core.DeskIn(ctx, sc.UserID, sc.ChannelID)
	if err != nil {
		if !access.IsRefusal(err) {
			b.logger(ctx).WithError(err).Error("Could not read a desk for pending")
		}
		b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.explain(opCheck, err))
		return
	}
	blocks := b.v.deskBlocks(d, func(r approval.Request) string { return b.cardLink(ctx, r) }, false, maxBlocks)
	b.ephemeral(ctx, sc.ChannelID, sc.UserID, b.v.deskText(d), slack.MsgOptionBlocks(blocks...))
}

// maxTime is the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
