package bot

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/metabase-bot/metabase-bot/bot/approval"
)

// Metrics are the bot's Prometheus metrics; they implement access.Metrics for the core. A nil *Metrics records nothing, so tests and tools
// can leave it out.
type Metrics struct {
	created      *prometheus.CounterVec
	decisions    *prometheus.CounterVec
	executions   *prometheus.CounterVec
	execDuration prometheus.Histogram
	slackErrors  *prometheus.CounterVec
	connects     prometheus.Counter
	mbDuration   *prometheus.HistogramVec
	mbErrors     *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg. counts, when set, is read at every scrape for the
// requests-by-state gauge, so the number is right whichever replica did the work.
func NewMetrics(reg prometheus.Registerer, counts func(ctx context.Context) (map[approval.State]int, error)) *Metrics {
	m := &Metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metabase_bot_requests_created_total", Help: "Requests created, by action."}, []string{"action"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metabase_bot_decisions_total", Help: "Requests decided by this process: approved, denied or expired; break_glass, confirmed or reversed for break-glass actions."}, []string{"decision"}),
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metabase_bot_executions_total", Help: "Executions finished by this process, by action and final state."}, []string{"action", "state"}),
		execDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "metabase_bot_execution_duration_seconds", Help: "Time from an execution's start to its recorded outcome.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		slackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metabase_bot_slack_api_errors_total", Help: "Slack Web API calls that failed, by method and error."}, []string{"method", "error"}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "metabase_bot_socket_mode_connections_total", Help: "Socket Mode connections made; more than one means reconnects."}),
		mbDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "metabase_bot_metabase_request_duration_seconds", Help: "Metabase API call latency, per attempt.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"instance", "method", "route"}),
		mbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "metabase_bot_metabase_errors_total", Help: "Metabase API calls that failed, by status (0 for no answer)."}, []string{"instance", "method", "route", "status"}),
	}
	reg.MustRegister(m.created, m.decisions, m.executions, m.execDuration, m.slackErrors, m.connects, m.mbDuration, m.mbErrors)
	if counts != nil {
		reg.MustRegister(&stateCollector{counts: counts, desc: prometheus.NewDesc("metabase_bot_requests",
			"Requests in the store by state (pending is the approval queue).", []string{"state"}, nil)})
	}
	return m
}

// stateCollector reads request counts from the store at scrape time.
type stateCollector struct {
	counts func(ctx context.Context) (map[approval.State]int, error)
	desc   *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.counts(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range []approval.State{approval.Pending, approval.Approved, approval.Scheduled, approval.Executing,
		approval.Succeeded, approval.Partial, approval.Failed, approval.Denied, approval.Expired, approval.Cancelled} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}

// ObserveMetabase records one call to the single-instance configuration's Metabase (labelled
// instance="default"); pass it to metabase.WithObserver.
func (m *Metrics) ObserveMetabase(method, route string, status int, d time.Duration, err error) {
	m.observeMetabase(approval.DefaultInstance, method, route, status, d, err)
}

// ObserveMetabaseOf returns the observer of the named Metabase instance's client, whose calls are
// labelled with instance, so a slow or failing instance shows apart from the others.
func (m *Metrics) ObserveMetabaseOf(instance string) func(method, route string, status int, d time.Duration, err error) {
	return func(method, route string, status int, d time.Duration, err error) {
		m.observeMetabase(instance, method, route, status, d, err)
	}
}

func (m *Metrics) observeMetabase(instance, method, route string, status int, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.mbDuration.WithLabelValues(instance, method, route).Observe(d.Seconds())
	if err != nil || status >= 400 {
		m.mbErrors.WithLabelValues(instance, method, route, strconv.Itoa(status)).Inc()
	}
}

// RequestCreated counts a new request (access.Metrics).
func (m *Metrics) RequestCreated(r approval.Request) {
	if m != nil {
		m.created.WithLabelValues(string(r.Action)).Inc()
	}
}

// Decided counts a decision made by this process (access.Metrics).
func (m *Metrics) Decided(decision string) {
	if m != nil {
		m.decisions.WithLabelValues(decision).Inc()
	}
}

// Executed counts a finished execution and its duration (access.Metrics).
func (m *Metrics) Executed(r approval.Request, d time.Duration) {
	if m != nil {
		m.execDuration.Observe(d.Seconds())
		m.executions.WithLabelValues(string(r.Action), string(r.State)).Inc()
	}
}

func (m *Metrics) connected() {
	if m != nil {
		m.connects.Inc()
	}
}

func (m *Metrics) slackError(method string, err error) {
	if m == nil || err == nil {
		return
	}
	code := "other"
	var se slack.SlackErrorResponse
	var rl *slack.RateLimitedError
	var sc slack.StatusCodeError
	switch {
	case errors.As(err, &se):
		code = se.Err
	case errors.As(err, &rl):
		code = "ratelimited"
	case errors.As(err, &sc):
		code = "http_" + strconv.Itoa(sc.Code)
	}
	m.slackErrors.WithLabelValues(method, code).Inc()
}
