package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Actor types of audit events.
const (
	ActorUser   = "user"
	ActorClient = "client"
	ActorSystem = "system"
)

// Outcomes of audit events.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// AuditEvent is one security-relevant event. Details must hold no secret.
type AuditEvent struct {
	Seq        int64
	ID         string
	OccurredAt time.Time
	ActorType  string
	ActorID    string
	Subject    string
	Action     string
	Outcome    string
	IPAddress  string
	UserAgent  string
	RequestID  string
	Details    map[string]any
	PrevHash   string
	Hash       string
}

type auditRow struct {
	Seq        int64 `gorm:"primaryKey;autoIncrement"`
	ID         string
	OccurredAt time.Time
	ActorType  string
	ActorID    string
	Subject    string
	Action     string
	Outcome    string
	IPAddress  string `gorm:"column:ip_address"`
	UserAgent  string
	RequestID  string
	Details    string
	PrevHash   string
	Hash       string
}

func (auditRow) TableName() string { return "audit_events" }

// auditContent is what a row's hash covers, in a fixed field order.
type auditContent struct {
	ID         string `json:"id"`
	OccurredAt string `json:"occurred_at"`
	ActorType  string `json:"actor_type"`
	ActorID    string `json:"actor_id"`
	Subject    string `json:"subject"`
	Action     string `json:"action"`
	Outcome    string `json:"outcome"`
	IPAddress  string `json:"ip_address"`
	UserAgent  string `json:"user_agent"`
	RequestID  string `json:"request_id"`
	Details    string `json:"details"`
}

// chainHash returns the hash of a row over the previous row's hash and the
// row's content, hex-encoded: HMAC-SHA256 under key, or SHA-256 without.
func chainHash(row *auditRow, key []byte) string {
	content, _ := json.Marshal(auditContent{
		ID:         row.ID,
		OccurredAt: row.OccurredAt.UTC().Format(time.RFC3339Nano),
		ActorType:  row.ActorType,
		ActorID:    row.ActorID,
		Subject:    row.Subject,
		Action:     row.Action,
		Outcome:    row.Outcome,
		IPAddress:  row.IPAddress,
		UserAgent:  row.UserAgent,
		RequestID:  row.RequestID,
		Details:    row.Details,
	})
	sum := sha256.New()
	if key != nil {
		sum = hmac.New(sha256.New, key)
	}
	sum.Write([]byte(row.PrevHash))
	sum.Write([]byte{'\n'})
	sum.Write(content)
	return hex.EncodeToString(sum.Sum(nil))
}

// auditLockKey is the PostgreSQL advisory lock that orders audit writers,
// so that two transactions never chain onto the same previous row.
const auditLockKey = 7_301_944_512

// AppendAuditEvent appends an event to the hash chain. In a context that
// carries a transaction it joins it, so that the event commits or rolls
// back with the change it records.
func (s *Store) AppendAuditEvent(ctx context.Context, event *AuditEvent) error {
	if event.ID == "" {
		event.ID = uuid.NewString()
	}
	if event.OccurredAt.IsZero() {
		event.OccurredAt = time.Now()
	}
	// Microseconds are what PostgreSQL keeps; hashing more would break
	// verification after a round trip.
	event.OccurredAt = event.OccurredAt.UTC().Truncate(time.Microsecond)
	if event.Outcome == "" {
		event.Outcome = OutcomeSuccess
	}
	// Request headers reach these fields. PostgreSQL rejects invalid UTF-8
	// and NUL in text, and a rejected event would leave no record.
	for _, field := range []*string{&event.ActorType, &event.ActorID, &event.Subject, &event.Action,
		&event.Outcome, &event.IPAddress, &event.UserAgent, &event.RequestID} {
		*field = CleanText(*field, maxAuditFieldLength)
	}
	details := event.Details
	if details == nil {
		details = map[string]any{}
	}
	detailsJSON, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("encode audit details: %w", err)
	}

	return s.InTx(ctx, func(ctx context.Context) error {
		db := s.db(ctx)
		if s.database.Dialect == "postgres" {
			if err := db.Exec("SELECT pg_advisory_xact_lock(?)", auditLockKey).Error; err != nil {
				return translate(err)
			}
		}
		var previous []string
		if err := db.Model(&auditRow{}).Order("seq DESC").Limit(1).Pluck("hash", &previous).Error; err != nil {
			return translate(err)
		}

		row := auditRow{
			ID: event.ID, OccurredAt: event.OccurredAt, ActorType: event.ActorType, ActorID: event.ActorID,
			Subject: event.Subject, Action: event.Action, Outcome: event.Outcome, IPAddress: event.IPAddress,
			UserAgent: event.UserAgent, RequestID: event.RequestID, Details: string(detailsJSON),
		}
		if len(previous) > 0 {
			row.PrevHash = previous[0]
		}
		row.Hash = chainHash(&row, s.auditKey)
		if err := db.Create(&row).Error; err != nil {
			return translate(err)
		}
		event.Seq, event.PrevHash, event.Hash = row.Seq, row.PrevHash, row.Hash
		return nil
	})
}

// maxAuditFieldLength caps each text field of an audit event, in bytes.
const maxAuditFieldLength = 512

// CleanText makes s storable as text: invalid UTF-8 becomes U+FFFD, NUL
// bytes go, and the result is cut to at most max bytes at a character
// boundary.
func CleanText(s string, max int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	ActorID, Subject, Action, Outcome string
	Since, Until                      time.Time
	// BeforeSeq continues a listing: only events older than it.
	BeforeSeq int64
	Limit     int
}

// ListAuditEvents returns matching events, newest first.
func (s *Store) ListAuditEvents(ctx context.Context, filter AuditFilter) ([]*AuditEvent, error) {
	query := s.db(ctx).Model(&auditRow{}).Order("seq DESC").Limit(filter.Limit)
	for column, value := range map[string]string{
		"actor_id": filter.ActorID, "subject": filter.Subject, "action": filter.Action, "outcome": filter.Outcome,
	} {
		if value != "" {
			query = query.Where(column+" = ?", value)
		}
	}
	if !filter.Since.IsZero() {
		query = query.Where("occurred_at >= ?", filter.Since.UTC())
	}
	if !filter.Until.IsZero() {
		query = query.Where("occurred_at < ?", filter.Until.UTC())
	}
	if filter.BeforeSeq > 0 {
		query = query.Where("seq < ?", filter.BeforeSeq)
	}

	var rows []auditRow
	if err := query.Find(&rows).Error; err != nil {
		return nil, translate(err)
	}
	events := make([]*AuditEvent, 0, len(rows))
	for i := range rows {
		events = append(events, rows[i].toEvent())
	}
	return events, nil
}

func (r *auditRow) toEvent() *AuditEvent {
	details := map[string]any{}
	_ = json.Unmarshal([]byte(r.Details), &details)
	return &AuditEvent{
		Seq: r.Seq, ID: r.ID, OccurredAt: r.OccurredAt.UTC(), ActorType: r.ActorType, ActorID: r.ActorID,
		Subject: r.Subject, Action: r.Action, Outcome: r.Outcome, IPAddress: r.IPAddress, UserAgent: r.UserAgent,
		RequestID: r.RequestID, Details: details, PrevHash: r.PrevHash, Hash: r.Hash,
	}
}

// AuditVerification is the result of walking the hash chain.
type AuditVerification struct {
	Checked int64
	// BrokenSeq is the first row whose hash or link does not match, or 0.
	BrokenSeq int64
	Reason    string
}

// verifyBatch is how many rows VerifyAuditChain reads at a time.
const verifyBatch = 1000

// VerifyAuditChain recomputes every row's hash in order and checks that
// each row links to the one before. A first row that links to an earlier
// row must be covered by an audit.pruned event recording that row's hash,
// so that deleting the oldest events is detected unless it was a pruning.
// Deleting the newest events leaves no trace in the log itself.
func (s *Store) VerifyAuditChain(ctx context.Context) (AuditVerification, error) {
	var result AuditVerification
	var previousHash, firstPrevHash string
	var firstSeq, lastSeq int64
	prunedThrough := map[string]bool{}
	first := true
	for {
		var rows []auditRow
		if err := s.db(ctx).Where("seq > ?", lastSeq).Order("seq").Limit(verifyBatch).Find(&rows).Error; err != nil {
			return result, translate(err)
		}
		for i := range rows {
			row := &rows[i]
			switch {
			case !first && row.PrevHash != previousHash:
				result.BrokenSeq, result.Reason = row.Seq, "does not link to the previous row"
				return result, nil
			case chainHash(row, s.auditKey) != row.Hash:
				result.BrokenSeq, result.Reason = row.Seq, "content does not match its hash"
				return result, nil
			}
			if first {
				firstSeq, firstPrevHash = row.Seq, row.PrevHash
			}
			if row.Action == AuditActionPruned {
				var details struct {
					LastHash string `json:"last_hash"`
				}
				_ = json.Unmarshal([]byte(row.Details), &details)
				prunedThrough[details.LastHash] = true
			}
			first = false
			previousHash = row.Hash
			lastSeq = row.Seq
			result.Checked++
		}
		if len(rows) < verifyBatch {
			if firstPrevHash != "" && !prunedThrough[firstPrevHash] {
				result.BrokenSeq, result.Reason = firstSeq, "links to a deleted row that no pruning recorded"
			}
			return result, nil
		}
	}
}

// AuditActionPruned is the event PruneAuditEvents appends: its details
// record the hash of the last deleted event.
const AuditActionPruned = "audit.pruned"

// PruneAuditEvents deletes the events before the first one that occurred
// at or after cutoff, in batches, and appends an audit.pruned event that
// records the hash of the last deleted one. It deletes by sequence, never
// leaving a gap, because clocks may order events differently from the
// chain.
func (s *Store) PruneAuditEvents(ctx context.Context, cutoff time.Time, batchSize int) (int64, error) {
	if batchSize <= 0 {
		batchSize = DefaultCleanupBatch
	}
	db := s.base.WithContext(ctx)
	var boundary []int64
	if err := db.Model(&auditRow{}).Where("occurred_at >= ?", cutoff.UTC()).Order("seq").Limit(1).Pluck("seq", &boundary).Error; err != nil {
		return 0, translate(err)
	}
	var last []auditRow
	query := db.Order("seq DESC").Limit(1)
	if len(boundary) > 0 {
		query = query.Where("seq < ?", boundary[0])
	}
	if err := query.Find(&last).Error; err != nil {
		return 0, translate(err)
	}
	if len(last) == 0 {
		return 0, nil
	}
	through := last[0]

	var deleted int64
	for {
		result := db.Exec("DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE seq <= ? ORDER BY seq LIMIT ?)",
			through.Seq, batchSize)
		if result.Error != nil {
			return deleted, translate(result.Error)
		}
		deleted += result.RowsAffected
		if result.RowsAffected < int64(batchSize) {
			break
		}
	}
	event := &AuditEvent{
		ActorType: ActorSystem, ActorID: "janitor", Action: AuditActionPruned,
		Details: map[string]any{"through_seq": through.Seq, "last_hash": through.Hash, "deleted": deleted, "cutoff": cutoff.UTC()},
	}
	return deleted, s.AppendAuditEvent(ctx, event)
}
