package backchannel

import "time"

// failureDecision is the result of decideAfterFailure for one attempt that
// ended with a retryable error.
type failureDecision struct {
	giveUp bool
	// maxAttempts is the attempt limit that applied: 1 while the breaker
	// was open, MaxAttempts otherwise.
	maxAttempts int
	breakerOpen bool // whether the breaker was open when the attempt failed
	// breakerOpened reports whether this failure opened the breaker, which
	// was closed or whose cool-down had ended.
	breakerOpened bool
	failures      int // consecutive failed deliveries, this one included when given up
}

// decideAfterFailure decides whether d, whose latest attempt ended with a
// retryable error, is retried or given up. A delivery gets MaxAttempts
// attempts, or only the one it made while its client's breaker is open.
// A given-up delivery counts as a failure against the breaker, and opens
// it or restarts its cool-down once BreakerThreshold failures are counted.
func (n *Notifier) decideAfterFailure(d *delivery) failureDecision {
	now := n.now()

	n.mu.Lock()
	defer n.mu.Unlock()

	client := d.client
	decision := failureDecision{maxAttempts: n.maxAttempts, failures: client.failures}
	if n.isBreakerOpen(client, now) {
		decision.breakerOpen = true
		decision.maxAttempts = 1
	}
	if d.attempts < decision.maxAttempts {
		return decision
	}

	decision.giveUp = true
	client.failures++
	decision.failures = client.failures
	if client.failures >= n.breakerThreshold {
		decision.breakerOpened = !decision.breakerOpen
		client.openUntil = now.Add(n.breakerCooldown)
	}
	return decision
}

// recordDelivered resets the failures of d's client, which closes its
// breaker, and reports whether that breaker had reached BreakerThreshold,
// open or with its cool-down ended.
func (n *Notifier) recordDelivered(d *delivery) (closed bool) {
	n.mu.Lock()
	defer n.mu.Unlock()

	closed = d.client.failures >= n.breakerThreshold
	d.client.failures = 0
	return closed
}

// isBreakerOpen reports whether client's deliveries are attempted only
// once at time now. n.mu must be held.
func (n *Notifier) isBreakerOpen(client *clientState, now time.Time) bool {
	return client.failures >= n.breakerThreshold && now.Before(client.openUntil)
}
