package backchannel

import (
	"context"
	"errors"
	"time"
)

// clientState contains the deliveries and the circuit breaker of one
// client. n.mu guards every field.
type clientState struct {
	id string
	// queue contains the deliveries ready to be sent, oldest first.
	// Deliveries waiting for a retry join it when their timer fires.
	queue    []*delivery
	inFlight int  // deliveries a worker is sending
	pending  int  // unfinished deliveries: queued, in flight or waiting for a retry
	isReady  bool // whether the client is in n.ready

	// failures is the number of consecutive failed deliveries. The breaker
	// is open while failures >= breakerThreshold and the clock is before
	// openUntil.
	failures  int
	openUntil time.Time
}

var (
	errStopped         = errors.New("notifier stopped")
	errQueueFull       = errors.New("queue full")
	errClientQueueFull = errors.New("client queue full")
)

// reserve takes a place in the queue for one delivery to clientID and
// returns the client's state. It fails when the notifier has stopped, when
// PerClientQueueSize deliveries to the client are unfinished, or when
// QueueSize deliveries are unfinished in all.
func (n *Notifier) reserve(clientID string) (*clientState, error) {
	n.mu.Lock()
	defer n.mu.Unlock()

	if n.stopped {
		return nil, errStopped
	}
	client := n.clients[clientID]
	if client != nil && client.pending >= n.perClientQueueSize {
		n.dropped++
		return nil, errClientQueueFull
	}
	if n.pending >= n.queueSize {
		n.dropped++
		return nil, errQueueFull
	}

	if client == nil {
		client = &clientState{id: clientID}
		n.clients[clientID] = client
	}
	client.pending++
	n.addPending(1)
	return client, nil
}

// enqueue puts d at the end of its client's queue, into the place that
// reserve took for it. After the notifier stopped, d is abandoned instead.
func (n *Notifier) enqueue(d *delivery) {
	n.mu.Lock()
	defer n.mu.Unlock()

	if n.stopped {
		return
	}
	d.client.queue = append(d.client.queue, d)
	n.markReady(d.client)
}

// markReady appends client to n.ready and wakes a worker when the client
// has a queued delivery and room for another request in flight. n.mu must
// be held.
func (n *Notifier) markReady(client *clientState) {
	if client.isReady || len(client.queue) == 0 || client.inFlight >= n.perClientConcurrency {
		return
	}
	client.isReady = true
	n.ready = append(n.ready, client)
	n.readyChanged.Signal()
}

// next waits for a ready client and takes the oldest delivery from its
// queue, which then counts as in flight until release. The client goes to
// the end of n.ready when it can take another delivery, so that workers
// serve the ready clients in turn. next returns nil once ctx ends.
func (n *Notifier) next(ctx context.Context) *delivery {
	n.mu.Lock()
	defer n.mu.Unlock()

	for len(n.ready) == 0 {
		if ctx.Err() != nil {
			return nil
		}
		n.readyChanged.Wait()
	}
	if ctx.Err() != nil {
		return nil
	}

	client := n.ready[0]
	n.ready[0] = nil
	n.ready = n.ready[1:]
	client.isReady = false

	d := client.queue[0]
	client.queue[0] = nil
	client.queue = client.queue[1:]
	client.inFlight++
	n.markReady(client)
	return d
}

// release ends the worker's hold on d's client that next began, whether d
// was finished, scheduled for a retry or abandoned.
func (n *Notifier) release(d *delivery) {
	n.mu.Lock()
	defer n.mu.Unlock()

	if n.stopped {
		return
	}
	d.client.inFlight--
	n.markReady(d.client)
	n.forgetIfIdle(d.client)
}

// finish releases the place of a delivery that was delivered or given up.
func (n *Notifier) finish(d *delivery) {
	n.mu.Lock()
	defer n.mu.Unlock()

	if n.stopped {
		return
	}
	d.client.pending--
	n.addPending(-1)
	n.forgetIfIdle(d.client)
}

// forgetIfIdle removes client from n.clients when nothing refers to its
// state any more and its breaker counts no failure, so that the map does
// not grow with every client ever notified. n.mu must be held.
func (n *Notifier) forgetIfIdle(client *clientState) {
	if client.pending == 0 && client.inFlight == 0 && client.failures == 0 {
		delete(n.clients, client.id)
	}
}

// droppedTotal returns how many deliveries were dropped because QueueSize
// or PerClientQueueSize was reached.
func (n *Notifier) droppedTotal() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}
