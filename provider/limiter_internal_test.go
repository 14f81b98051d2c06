package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/latchkey/latchkey/storage"
)

func TestPasswordLimiterBoundsConcurrency(t *testing.T) {
	limiter := &PasswordLimiter{slots: make(chan struct{}, 1), wait: 50 * time.Millisecond}
	limiter.slots <- struct{}{} // one check in progress

	_, err := limiter.Verify(context.Background(), dummyPasswordHash, "password")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("verify with every slot taken = %v, want an unavailable error", err)
	}

	<-limiter.slots
	ok, err := limiter.Verify(context.Background(), HashPassword("correct horse"), "correct horse")
	if err != nil || !ok {
		t.Errorf("verify with a free slot = %t, %v", ok, err)
	}
	if len(limiter.slots) != 0 {
		t.Error("verify did not release its slot")
	}
}
