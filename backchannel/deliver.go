package backchannel

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxResponseBody is how much of an RP's response body is read: enough for
// the JSON error object that spec §2.8 allows with a 400 response.
const maxResponseBody = 4 << 10

// outcome classifies the result of one attempt.
type outcome int

const (
	delivered outcome = iota
	retryable         // 408, 429, 5xx, network errors and timeouts
	rejected          // redirects and every other status
)

// response is the result of one attempt: a status or a transport error.
type response struct {
	status int
	err    error  // transport error; status is 0 when set
	rpErr  string // "error" and "error_description" of a JSON error body
}

func (r response) outcome() outcome {
	switch {
	case r.err != nil:
		return retryable
	case r.status >= 200 && r.status < 300:
		return delivered
	case r.status == http.StatusRequestTimeout, r.status == http.StatusTooManyRequests, r.status >= 500:
		return retryable
	default:
		return rejected
	}
}

// work sends queued deliveries until ctx ends.
func (n *Notifier) work(ctx context.Context) {
	for {
		d := n.next(ctx)
		if d == nil {
			return
		}
		n.attempt(ctx, d)
		n.release(d)
	}
}

// attempt sends d once and then finishes it, or schedules its retry. When
// ctx ends during the attempt, d is left unfinished for stop to abandon.
func (n *Notifier) attempt(ctx context.Context, d *delivery) {
	if ctx.Err() != nil {
		return
	}

	if n.now().Sub(d.issuedAt) >= resignAge {
		if err := n.sign(ctx, d); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.logger.ErrorContext(ctx, "backchannel logout token signing failed",
				"client_id", d.target.ClientID, "error", err)
			n.finish(d)
			return
		}
	}

	d.attempts++
	result := n.post(ctx, d)
	if ctx.Err() != nil {
		return
	}

	attrs := []any{"client_id", d.target.ClientID, "host", d.host, "attempt", d.attempts}
	if result.err != nil {
		attrs = append(attrs, "error", result.err)
	} else {
		attrs = append(attrs, "status", result.status)
	}
	if result.rpErr != "" {
		attrs = append(attrs, "rp_error", result.rpErr)
	}

	// Each case logs before finish, so that the log is written when Wait returns.
	switch result.outcome() {
	case delivered:
		n.logger.DebugContext(ctx, "backchannel logout delivered", attrs...)
		if n.recordDelivered(d) {
			n.logger.InfoContext(ctx, "backchannel logout circuit breaker closed",
				"client_id", d.target.ClientID, "host", d.host)
		}
		n.finish(d)

	case rejected:
		// A rejection proves that the client responds, but not that it
		// accepts logout tokens, so it leaves the circuit breaker as it is.
		if result.status >= 300 && result.status < 400 {
			n.logger.WarnContext(ctx, "backchannel logout failed: redirect not followed", attrs...)
		} else {
			n.logger.WarnContext(ctx, "backchannel logout rejected by client", attrs...)
		}
		n.finish(d)

	case retryable:
		n.handleRetryableFailure(ctx, d, attrs)
	}
}

// handleRetryableFailure schedules the retry of d, whose latest attempt
// ended with a retryable error, or gives d up and logs when that opens the
// circuit breaker of d's client.
func (n *Notifier) handleRetryableFailure(ctx context.Context, d *delivery, attrs []any) {
	decision := n.decideAfterFailure(d)
	if !decision.giveUp {
		delay := n.retryDelay(d.attempts)
		n.logger.WarnContext(ctx, "backchannel logout attempt failed: retrying", append(attrs, "retry_in", delay)...)
		n.retryAfter(delay, d)
		return
	}

	attrs = append(attrs, "max_attempts", decision.maxAttempts)
	if decision.breakerOpen {
		attrs = append(attrs, "circuit_breaker", "open")
	}
	n.logger.ErrorContext(ctx, "backchannel logout failed: giving up", attrs...)
	if decision.breakerOpened {
		n.logger.WarnContext(ctx, "backchannel logout circuit breaker opened",
			"client_id", d.target.ClientID, "host", d.host,
			"consecutive_failures", decision.failures, "cooldown", n.breakerCooldown)
	}
	n.finish(d)
}

// retryDelay returns Backoff doubled once per attempt after the first.
func (n *Notifier) retryDelay(attempts int) time.Duration {
	delay := n.backoff
	for range attempts - 1 {
		if delay > math.MaxInt64/2 {
			break // doubling again would overflow
		}
		delay *= 2
	}
	return delay
}

// retryAfter queues d again after delay. A timer holds d meanwhile, so that
// no worker waits and other deliveries go on. d keeps its place in the
// queue, which reserve counted.
func (n *Notifier) retryAfter(delay time.Duration, d *delivery) {
	time.AfterFunc(delay, func() { n.enqueue(d) })
}

// post sends d's logout token to d's target once.
func (n *Notifier) post(ctx context.Context, d *delivery) response {
	body := url.Values{"logout_token": {d.token}}.Encode()
	request, err := http.NewRequestWithContext(ctx, http.MethodPost, d.target.URI, strings.NewReader(body))
	if err != nil {
		return response{err: err}
	}
	request.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	reply, err := n.client.Do(request)
	if err != nil {
		// A *url.Error repeats the whole URI, which may carry secrets in its
		// query. Its cause names the host where it matters.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return response{err: err}
	}
	defer reply.Body.Close()

	content, _ := io.ReadAll(io.LimitReader(reply.Body, maxResponseBody))
	result := response{status: reply.StatusCode}
	if reply.StatusCode >= 400 && reply.StatusCode < 500 {
		result.rpErr = parseErrorBody(content)
	}
	return result
}

// parseErrorBody returns the error code and description of an OAuth-style
// JSON error body, or "" when content is not one.
func parseErrorBody(content []byte) string {
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(content, &body) != nil || body.Error == "" {
		return ""
	}
	if body.Description == "" {
		return body.Error
	}
	return body.Error + ": " + body.Description
}
