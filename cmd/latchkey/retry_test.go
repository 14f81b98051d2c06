package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/latchkey/latchkey/storage"
)

func TestRetryWaitsForUnavailableDependency(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	attempts := 0
	value, err := retry(context.Background(), logger, "database", func(context.Context) (string, error) {
		attempts++
		if attempts < 3 {
			return "", storage.ErrUnavailable
		}
		return "connected", nil
	})
	if err != nil || value != "connected" {
		t.Fatalf("retry = %q, %v; want success on the third attempt", value, err)
	}
	if attempts != 3 {
		t.Errorf("attempts = %d, want 3", attempts)
	}
}

func TestRetryStopsOnOtherErrors(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	configErr := errors.New("invalid Redis URL")
	attempts := 0
	_, err := retry(context.Background(), logger, "redis", func(context.Context) (int, error) {
		attempts++
		return 0, configErr
	})
	if !errors.Is(err, configErr) || attempts != 1 {
		t.Errorf("retry = %v after %d attempts; want the error at once", err, attempts)
	}
}

func TestRetryStopsWhenCancelled(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	_, err := retry(ctx, logger, "database", func(context.Context) (int, error) {
		cancel()
		return 0, storage.ErrUnavailable
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("retry = %v, want context.Canceled", err)
	}
}
