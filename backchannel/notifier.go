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
	DefaultWorkers     = 4
	DefaultQueueSize   = 1024
	DefaultMaxAttempts = 5
	DefaultBackoff     = time.Second
	DefaultTimeout     = 5 * time.Second
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
	// MaxAttempts is the number of attempts, the first included, after
	// which a retryable failure is given up.
	MaxAttempts int
	// Backoff is the delay before the first retry. It doubles before each
	// later retry.
	Backoff time.Duration

	// Now returns the time for the iat and exp claims. Retry delays are
	// measured with real timers and ignore it.
	Now func() time.Time
}

// Notifier signs logout tokens and delivers them to relying parties in the
// background. Its methods are safe for concurrent use.
type Notifier struct {
	issuer      string
	signer      Signer
	client      *http.Client
	logger      *slog.Logger
	workers     int
	queueSize   int
	maxAttempts int
	backoff     time.Duration
	now         func() time.Time

	// queue has room for queueSize deliveries, and at most queueSize are
	// unfinished at once, so a send to it never blocks.
	queue chan *delivery

	mu      sync.Mutex
	pending int           // unfinished deliveries, including reserved slots
	idle    chan struct{} // closed while pending is 0
	started bool
	stopped bool
	dropped int64 // deliveries dropped because the queue was full
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
	if cfg.Workers < 0 {
		problems = append(problems, fmt.Errorf("workers is %d: set 0 for the default or a positive number", cfg.Workers))
	}
	if cfg.QueueSize < 0 {
		problems = append(problems, fmt.Errorf("queue size is %d: set 0 for the default or a positive number", cfg.QueueSize))
	}
	if cfg.MaxAttempts < 0 {
		problems = append(problems, fmt.Errorf("max attempts is %d: set 0 for the default or a positive number", cfg.MaxAttempts))
	}
	if cfg.Backoff < 0 {
		problems = append(problems, fmt.Errorf("backoff is %s: set 0 for the default or a positive duration", cfg.Backoff))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}

	n := &Notifier{
		issuer:      cfg.Issuer,
		signer:      cfg.Signer,
		client:      deliveryClient(cfg.HTTPClient),
		logger:      cfg.Logger,
		workers:     valueOrDefault(cfg.Workers, DefaultWorkers),
		queueSize:   valueOrDefault(cfg.QueueSize, DefaultQueueSize),
		maxAttempts: valueOrDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		backoff:     valueOrDefault(cfg.Backoff, DefaultBackoff),
		now:         cfg.Now,
		idle:        make(chan struct{}),
	}
	if n.logger == nil {
		n.logger = slog.Default()
	}
	if n.now == nil {
		n.now = time.Now
	}
	n.queue = make(chan *delivery, n.queueSize)
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
	n.logger.InfoContext(ctx, "backchannel logout notifier started", "workers", n.workers)

	go func() {
		<-ctx.Done()
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

// reserve takes a place in the queue for one delivery. It fails when the
// notifier has stopped or QueueSize deliveries are unfinished.
func (n *Notifier) reserve() error {
	n.mu.Lock()
	defer n.mu.Unlock()

	if n.stopped {
		return errStopped
	}
	if n.pending >= n.queueSize {
		n.dropped++
		return errQueueFull
	}
	n.addPending(1)
	return nil
}

var (
	errStopped   = errors.New("notifier stopped")
	errQueueFull = errors.New("queue full")
)

// enqueue puts a delivery into the place that reserve took for it. After
// the notifier stopped, the delivery is abandoned instead.
func (n *Notifier) enqueue(d *delivery) {
	n.mu.Lock()
	defer n.mu.Unlock()

	if !n.stopped {
		n.queue <- d
	}
}

// finish releases the place of a delivery that was delivered or given up.
func (n *Notifier) finish() {
	n.mu.Lock()
	defer n.mu.Unlock()

	if !n.stopped {
		n.addPending(-1)
	}
}

// droppedTotal returns how many deliveries were dropped because the queue
// was full.
func (n *Notifier) droppedTotal() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}
