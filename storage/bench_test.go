package storage_test

import (
	"testing"

	"github.com/latchkey/latchkey/storage"
	"github.com/latchkey/latchkey/storage/storagetest"
)

// BenchmarkAppendAuditEvent measures one audit-event insert, hash chain
// included, on SQLite and on PostgreSQL.
func BenchmarkAppendAuditEvent(b *testing.B) {
	backends := []string{storagetest.SQLite, storagetest.Postgres}
	for _, backend := range backends {
		b.Run(backend, func(b *testing.B) {
			store := storage.NewStore(storagetest.NewDatabaseOn(b, backend))
			b.ReportAllocs()
			for b.Loop() {
				event := &storage.AuditEvent{
					ActorType: storage.ActorUser, ActorID: "6a0f3c1e-8d2b-4f6a-9c3e-1b2d3e4f5a61",
					Subject: "6a0f3c1e-8d2b-4f6a-9c3e-1b2d3e4f5a61", Action: "user.profile_updated",
					IPAddress: "127.0.0.1", UserAgent: "benchmark", RequestID: "request",
					Details: map[string]any{"fields": []string{"name"}},
				}
				if err := store.AppendAuditEvent(b.Context(), event); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
