package main

// One goroutine owns the peer's state, as a browser page's event loop does: Pion's callbacks, timers and
// the signaling reader only post closures here. Nothing that runs on the loop blocks on Pion's own
// goroutines, so no callback can deadlock against a Pion call.

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

type loop struct {
	mu      sync.Mutex
	queue   []func()
	wake    chan struct{}
	done    chan struct{}
	stopped sync.Once
}

func newLoop() *loop {
	return &loop{wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// post queues f to run on the loop (never blocks: the queue is unbounded).
func (l *loop) post(f func()) {
	l.mu.Lock()
	l.queue = append(l.queue, f)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// after posts f once d has passed.
func (l *loop) after(seconds float64, f func()) *time.Timer {
	return time.AfterFunc(dur(seconds), func() { l.post(f) })
}

// run runs posted closures in order until stop is called.
func (l *loop) run() {
	for {
		select {
		case <-l.done:
			return
		case <-l.wake:
		}
		for {
			l.mu.Lock()
			if len(l.queue) == 0 {
				l.mu.Unlock()
				break
			}
			f := l.queue[0]
			l.queue = l.queue[1:]
			l.mu.Unlock()
			f()
			select {
			case <-l.done:
				return
			default:
			}
		}
	}
}

func (l *loop) stop() { l.stopped.Do(func() { close(l.done) }) }

// now is CLOCK_MONOTONIC in seconds: Python's time.monotonic(), so the session compares our marks with
// every other peer's.
func now() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

func dur(seconds float64) time.Duration {
	if seconds < 0 {
		seconds = 0
	}
	return time.Duration(seconds * float64(time.Second))
}
