// netsim-pion: a WebRTC peer on Pion (pion/webrtc v3) speaking netsim's peer protocol (docs/peers.md):
// config from the JSON file named by NETSIM_PEER_CONFIG, logs on stderr, the record as the last line on
// stdout. SIGTERM stops it (bye, close, record within 2 s). It is also the example to copy for a stack of
// one's own (`--peer-a exec:COMMAND`).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

const closeTimeout = 1500 * time.Millisecond

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		// One session's work is small: one P spares the futex handoffs between Go's threads (37 -> 22
		// CPU-ms a peer, measured), which counts with 200 peers on 2 cores. GOMAXPROCS overrides it.
		runtime.GOMAXPROCS(1)
	}
	cfg, err := loadConfig(os.Getenv("NETSIM_PEER_CONFIG"))
	p := newPeer(cfg)
	if err != nil {
		// Refused: a failed record naming the key (the session shows it as this peer's reason).
		fmt.Fprintln(os.Stderr, "netsim-pion:", err)
		reason := err.Error()
		p.reason, p.errText = &reason, &reason
		printRecord(p.record())
		os.Exit(2)
	}
	if cfg.CAFile != nil && *cfg.CAFile != "" {
		// TURN over TLS verifies coturn against the system pool, which Go reads from SSL_CERT_FILE.
		_ = os.Setenv("SSL_CERT_FILE", *cfg.CAFile)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		p.loop.post(func() { p.stop("stopped") })
	}()
	p.loop.post(p.start)
	p.loop.run()
	p.close()
	printRecord(p.record())
}

// close ends the connection and signaling, each within a bounded wait (a peer must always end).
func (p *peer) close() {
	done := make(chan struct{})
	go func() {
		if p.pc != nil {
			_ = p.pc.Close()
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeTimeout):
		fmt.Fprintln(os.Stderr, "netsim-pion: PeerConnection.Close did not return in time")
	}
	if p.sig.ws != nil {
		_ = p.sig.ws.Close()
	}
}

func printRecord(rec map[string]any) {
	data, err := json.Marshal(rec)
	if err != nil {
		data, _ = json.Marshal(map[string]any{"protocol": protocolVersion, "stack": stackName,
			"state": "failed", "reason": "record: " + err.Error()})
	}
	os.Stdout.Write(append(data, '\n'))
}
