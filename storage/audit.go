package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

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

// chainHash returns the hash of a row: SHA-256 over the previous row's hash
// and the row's content, hex-encoded.
func chainHash(row *auditRow) string {
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
		row.Hash = chainHash(&row)
		if err := db.Create(&row).Error; err != nil {
			return translate(err)
		}
		event.Seq, event.PrevHash, event.Hash = row.Seq, row.PrevHash, row.Hash
		return nil
	})
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
// each row links to the one before. The first row's link is taken as
// given, so that a log pruned of its oldest rows still verifies.
func (s *Store) VerifyAuditChain(ctx context.Context) (AuditVerification, error) {
	var result AuditVerification
	var previousHash string
	var lastSeq int64
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
			case chainHash(row) != row.Hash:
				result.BrokenSeq, result.Reason = row.Seq, "content does not match its hash"
				return result, nil
			}
			first = false
			previousHash = row.Hash
			lastSeq = row.Seq
			result.Checked++
		}
		if len(rows) < verifyBatch {
			return result, nil
		}
	}
}

// PruneAuditEvents deletes events that occurred before cutoff, oldest
// first, in batches. The remaining rows still verify: the new first row's
// link is taken as given.
func (s *Store) PruneAuditEvents(ctx context.Context, cutoff time.Time, batchSize int) (int64, error) {
	if batchSize <= 0 {
		batchSize = DefaultCleanupBatch
	}
	var deleted int64
	for {
		result := s.base.WithContext(ctx).Exec(
			"DELETE FROM audit_events WHERE seq IN (SELECT seq FROM audit_events WHERE occurred_at < ? ORDER BY seq LIMIT ?)",
			cutoff.UTC(), batchSize)
		if result.Error != nil {
			return deleted, translate(result.Error)
		}
		deleted += result.RowsAffected
		if result.RowsAffected < int64(batchSize) {
			return deleted, nil
		}
	}
}
