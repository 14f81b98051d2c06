package backchannel

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

const (
	// logoutEvent is the member name of the events claim that marks a JWT
	// as a logout token (spec §2.4).
	logoutEvent = "http://schemas.openid.net/event/backchannel-logout"
	// logoutTokenType is the typ header that spec §2.4 recommends, so that
	// a logout token cannot be mistaken for another kind of JWT.
	logoutTokenType = "logout+jwt"
	// tokenLifetime is the gap between iat and exp.
	tokenLifetime = 2 * time.Minute
	// resignAge is the age after which a token is signed again before it is
	// sent, so that the RP always receives one with a minute or more left.
	resignAge = tokenLifetime / 2
)

// delivery is one logout token on its way to one target.
type delivery struct {
	target    Target
	host      string // host of target.URI, for logs
	subject   string
	sessionID string

	token    string
	issuedAt time.Time
	attempts int // attempts made so far

	client *clientState // the queue and circuit breaker of target.ClientID
}

// Notify signs one logout token per target and queues the deliveries.
// Start's workers send them, so Notify returns without contacting any
// relying party. subject is the sub claim and must not be empty.
// sessionID is the sid claim, omitted when empty.
//
// A target is dropped with a Warn log when its ClientID is empty, its URI is
// not an absolute http or https URI, or its Algorithm is "none". It is
// dropped with an Error log when signing fails, when QueueSize deliveries
// are already unfinished, when PerClientQueueSize deliveries to its client
// are already unfinished, or when the notifier has stopped. Nothing is
// returned because the caller has already ended the session and has
// nothing to undo.
func (n *Notifier) Notify(ctx context.Context, subject, sessionID string, targets []Target) {
	if subject == "" {
		n.logger.ErrorContext(ctx, "backchannel logout skipped: subject is empty", "targets", len(targets))
		return
	}
	for _, target := range targets {
		n.notify(ctx, subject, sessionID, target)
	}
}

func (n *Notifier) notify(ctx context.Context, subject, sessionID string, target Target) {
	host, err := checkTarget(target)
	if err != nil {
		n.logger.WarnContext(ctx, "backchannel logout skipped: invalid target",
			"client_id", target.ClientID, "error", err)
		return
	}

	// The place is reserved before signing, so that no signature is wasted
	// while the queue is full.
	client, err := n.reserve(target.ClientID)
	switch {
	case errors.Is(err, errClientQueueFull):
		n.logger.ErrorContext(ctx, "backchannel logout dropped: client queue full",
			"client_id", target.ClientID, "host", host,
			"per_client_queue_size", n.perClientQueueSize, "dropped_total", n.droppedTotal())
		return
	case errors.Is(err, errQueueFull):
		n.logger.ErrorContext(ctx, "backchannel logout dropped: queue full",
			"client_id", target.ClientID, "host", host,
			"queue_size", n.queueSize, "dropped_total", n.droppedTotal())
		return
	case err != nil:
		n.logger.ErrorContext(ctx, "backchannel logout dropped: notifier stopped",
			"client_id", target.ClientID, "host", host)
		return
	}

	d := &delivery{target: target, host: host, subject: subject, sessionID: sessionID, client: client}
	if err := n.sign(ctx, d); err != nil {
		n.logger.ErrorContext(ctx, "backchannel logout token signing failed",
			"client_id", target.ClientID, "error", err)
		n.finish(d)
		return
	}
	n.enqueue(d)
}

// checkTarget returns the host of target's URI, or why target cannot be
// notified. The error never contains the URI, which may carry secrets in
// its query.
func checkTarget(target Target) (string, error) {
	if target.ClientID == "" {
		return "", errors.New("client_id is empty")
	}
	if strings.EqualFold(target.Algorithm, "none") {
		return "", errors.New(`signing algorithm "none" is not allowed: logout tokens must be signed`)
	}

	uri, err := url.Parse(target.URI)
	if err != nil {
		return "", errors.New("backchannel_logout_uri is not a valid URI")
	}
	if uri.Scheme != "http" && uri.Scheme != "https" {
		return "", fmt.Errorf("backchannel_logout_uri scheme %q is not http or https", uri.Scheme)
	}
	if uri.Host == "" {
		return "", errors.New("backchannel_logout_uri has no host")
	}
	// The registration rule again, for clients registered before it or by
	// other means: logout tokens cross networks only over TLS.
	if uri.Scheme == "http" && !IsLoopbackHost(uri.Hostname()) {
		return "", errors.New("backchannel_logout_uri uses http on a non-loopback host")
	}
	return uri.Host, nil
}

// IsLoopbackHost reports whether host is localhost or a loopback IP
// address. Names under .localhost are left out: a resolver may send them to
// DNS.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sign sets d.token to a new logout token issued now.
func (n *Notifier) sign(ctx context.Context, d *delivery) error {
	now := n.now()
	claims := map[string]any{
		"iss":    n.issuer,
		"aud":    d.target.ClientID,
		"iat":    now.Unix(),
		"exp":    now.Add(tokenLifetime).Unix(),
		"jti":    newJTI(),
		"sub":    d.subject,
		"events": map[string]any{logoutEvent: map[string]any{}},
	}
	if d.sessionID != "" {
		claims["sid"] = d.sessionID
	}

	algorithm := d.target.Algorithm
	if algorithm == "" {
		algorithm = "RS256"
	}
	token, err := n.signer.SignJWT(ctx, algorithm, claims, map[string]any{"typ": logoutTokenType})
	if err != nil {
		return fmt.Errorf("sign logout token with %s: %w", algorithm, err)
	}
	d.token = token
	d.issuedAt = now
	return nil
}

// newJTI returns 128 random bits, base64url-encoded without padding.
func newJTI() string {
	var id [16]byte
	rand.Read(id[:]) // Since Go 1.24 it never returns an error.
	return base64.RawURLEncoding.EncodeToString(id[:])
}
