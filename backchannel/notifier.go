package backchannel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Signer signs a JWT with the provider's active key for algorithm ("RS256"
// or "ES256") and sets the header's kid. header contains extra header
// fields such as "typ".
type Signer interface {
	SignJWT(ctx context.Context, algorithm string, claims map[string]any, header map[string]any) (string, error)
}

// Target is one client to tell that a session ended.
type Target struct {
	ClientID string
	// URI is the client's registered backchannel_logout_uri.
	URI string
	// Algorithm is the client's ID token signing algorithm. Empty means RS256.
	Algorithm string
}

// Defaults for the zero fields of Config.
const (
	DefaultWorkers              = 4
	DefaultQueueSize            = 1024
	DefaultPerClientConcurrency = 1
	DefaultPerClientQueueSize   = 256
	DefaultMaxAttempts          = 5
	DefaultBackoff              = time.Second
	DefaultTimeout              = 5 * time.Second
	DefaultBreakerThreshold     = 5
	DefaultBreakerCooldown      = time.Minute
)

// Config configures a Notifier. Issuer and Signer are required. Every other
// field takes its default when zero, and negative numbers are invalid.
type Config struct {
	// Issuer is the iss claim of every logout token.
	Issuer string
	Signer Signer

	// HTTPClient sends the logout requests. nil means a client with
	// DefaultTimeout. The Notifier uses a copy that never follows redirects
	// and, when the given client has no Timeout, times out after
	// DefaultTimeout.
	HTTPClient *http.Client
	// Logger receives delivery logs. nil means slog.Default().
	Logger *slog.Logger

	// Workers is the maximum number of logout requests in flight at once.
	Workers int
	// QueueSize is the maximum number of unfinished deliveries, counting
	// those queued, in flight and waiting for a retry. Notify drops
	// deliveries beyond it.
	QueueSize int
	// PerClientConcurrency is the maximum number of logout requests to one
	// client in flight at once, so that a slow client holds at most that
	// many workers and the others serve the other clients.
	PerClientConcurrency int
	// PerClientQueueSize is the maximum number of unfinished deliveries to
	// one client, counted as for QueueSize. Notify drops that client's
	// deliveries beyond it, so one client can fill at most this part of
	// QueueSize.
	PerClientQueueSize int
	// MaxAttempts is the number of attempts, the first included, after
	// which a retryable failure is given up.
	MaxAttempts int
	// Backoff is the delay before the first retry. It doubles before each
	// later retry.
	Backoff time.Duration

	// BreakerThreshold is the number of consecutive failed deliveries to
	// one client that opens the client's circuit breaker. A delivery fails
	// when its last attempt ends with a retryable error. Rejections neither
	// count nor reset the count, and a delivered token closes the breaker.
	BreakerThreshold int
	// BreakerCooldown is how long a circuit breaker stays open after the
	// failed delivery that opened it, or after a later one. While it is
	// open, each delivery to the client gets one attempt and no retries.
	BreakerCooldown time.Duration

	// Now returns the time for the iat and exp claims and for the circuit
	// breaker's cool-down. Retry delays are measured with real timers and
	// ignore it.
	Now func() time.Time
}

// Notifier signs logout tokens and delivers them to relying parties in the
// background. Its methods are safe for concurrent use.
type Notifier struct {
	issuer               string
	signer               Signer
	client               *http.Client
	logger               *slog.Logger
	workers              int
	queueSize            int
	perClientConcurrency int
	perClientQueueSize   int
	maxAttempts          int
	backoff              time.Duration
	breakerThreshold     int
	breakerCooldown      time.Duration
	now                  func() time.Time

	mu sync.Mutex
	// clients contains the state of every client with unfinished
	// deliveries or failures that its circuit breaker counts.
	clients map[string]*clientState
	// ready lists, in round-robin order, the clients with queued
	// deliveries and fewer than perClientConcurrency in flight.
	ready []*clientState
	// readyChanged wakes the workers waiting for a client in ready, and
	// all of them when the notifier stops. It uses mu.
	readyChanged *sync.Cond

	pending int           // unfinished deliveries, including reserved slots
	idle    chan struct{} // closed while pending is 0
	started bool
	stopped bool
	dropped int64 // deliveries dropped because QueueSize or PerClientQueueSize was reached
}

// New validates cfg, fills in its defaults and returns a Notifier whose
// workers have not started yet. Deliveries queued before Start wait for it.
func New(cfg Config) (*Notifier, error) {
	var problems []error
	if cfg.Issuer == "" {
		problems = append(problems, errors.New("issuer is missing: set it to the provider's issuer URL"))
	}
	if cfg.Signer == nil {
		problems = append(problems, errors.New("signer is missing: set it to the provider's key set"))
	}
	counts := []struct {
		name  string
		value int
	}{
		{"workers", cfg.Workers}, {"queue size", cfg.QueueSize}, {"per-client concurrency", cfg.PerClientConcurrency},
		{"per-client queue size", cfg.PerClientQueueSize}, {"max attempts", cfg.MaxAttempts}, {"breaker threshold", cfg.BreakerThreshold},
	}
	for _, count := range counts {
		if count.value < 0 {
			problems = append(problems, fmt.Errorf("%s is %d: set 0 for the default or a positive number", count.name, count.value))
		}
	}
	durations := []struct {
		name  string
		value time.Duration
	}{{"backoff", cfg.Backoff}, {"breaker cooldown", cfg.BreakerCooldown}}
	for _, duration := range durations {
		if duration.value < 0 {
			problems = append(problems, fmt.Errorf("%s is %s: set 0 for the default or a positive duration", duration.name, duration.value))
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}

	n := &Notifier{
		issuer:               cfg.Issuer,
		signer:               cfg.Signer,
		client:               deliveryClient(cfg.HTTPClient),
		logger:               cfg.Logger,
		workers:              valueOrDefault(cfg.Workers, DefaultWorkers),
		queueSize:            valueOrDefault(cfg.QueueSize, DefaultQueueSize),
		perClientConcurrency: valueOrDefault(cfg.PerClientConcurrency, DefaultPerClientConcurrency),
		perClientQueueSize:   valueOrDefault(cfg.PerClientQueueSize, DefaultPerClientQueueSize),
		maxAttempts:          valueOrDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		backoff:              valueOrDefault(cfg.Backoff, DefaultBackoff),
		breakerThreshold:     valueOrDefault(cfg.BreakerThreshold, DefaultBreakerThreshold),
		breakerCooldown:      valueOrDefault(cfg.BreakerCooldown, DefaultBreakerCooldown),
		now:                  cfg.Now,
		clients:              map[string]*clientState{},
		idle:                 make(chan struct{}),
	}
	if n.logger == nil {
		n.logger = slog.Default()
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.readyChanged = sync.NewCond(&n.mu)
	close(n.idle)
	return n, nil
}

func valueOrDefault[T int | time.Duration](value, fallback T) T {
	if value == 0 {
		return fallback
	}
	return value
}

// deliveryClient returns a copy of client that never follows redirects and
// always has a timeout. A redirect would send the logout token to a URI the
// client never registered.
func deliveryClient(client *http.Client) *http.Client {
	var delivering http.Client
	if client != nil {
		delivering = *client
	}
	if delivering.Timeout == 0 {
		delivering.Timeout = DefaultTimeout
	}
	delivering.CheckRedirect = func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}
	return &delivering
}

// Start launches the workers. They stop when ctx ends, and deliveries still
// queued or waiting for a retry are then abandoned without further logs.
// Calling Start again has no effect.
func (n *Notifier) Start(ctx context.Context) {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return
	}
	n.started = true
	n.mu.Unlock()

	var workers sync.WaitGroup
	for range n.workers {
		workers.Go(func() { n.work(ctx) })
	}
	n.logger.InfoContext(ctx, "backchannel logout notifier started",
		"workers", n.workers, "per_client_concurrency", n.perClientConcurrency)

	go func() {
		<-ctx.Done()
		// A worker checks ctx under mu before it waits, so this broadcast
		// reaches every worker that missed the end of ctx.
		n.mu.Lock()
		n.readyChanged.Broadcast()
		n.mu.Unlock()
		workers.Wait()
		n.stop(context.WithoutCancel(ctx))
	}()
}

// stop marks every unfinished delivery as abandoned, so that Wait returns
// and later Notify calls drop their deliveries. It runs after the workers
// have returned.
func (n *Notifier) stop(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()

	// The log is written before Wait can return, so that it comes first.
	n.logger.InfoContext(ctx, "backchannel logout notifier stopped", "abandoned", n.pending)
	n.stopped = true
	n.addPending(-n.pending)
	clear(n.clients)
	n.ready = nil
}

// Wait blocks until every delivery queued before the call has finished,
// delivered or given up, or until ctx ends, and then returns ctx's error.
// Deliveries abandoned because the notifier stopped count as finished.
func (n *Notifier) Wait(ctx context.Context) error {
	n.mu.Lock()
	idle := n.idle
	n.mu.Unlock()

	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addPending changes the number of unfinished deliveries and opens or
// closes n.idle when that number leaves or reaches 0. n.mu must be held.
func (n *Notifier) addPending(delta int) {
	before := n.pending
	n.pending += delta
	switch {
	case before == 0 && n.pending > 0:
		n.idle = make(chan struct{})
	case before > 0 && n.pending == 0:
		close(n.idle)
	}
}
