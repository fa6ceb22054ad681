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
	"syscall"
	"time"
)

const closeTimeout = 1500 * time.Millisecond

func main() {
	cfg, err := loadConfig(os.Getenv("NETSIM_PEER_CONFIG"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "netsim-pion:", err)
		printRecord(badConfigRecord(cfg, err))
		os.Exit(2)
	}
	if cfg.CAFile != nil && *cfg.CAFile != "" {
		// TURN over TLS verifies coturn against the system pool, which Go reads from SSL_CERT_FILE.
		_ = os.Setenv("SSL_CERT_FILE", *cfg.CAFile)
	}
	p, err := newPeer(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "netsim-pion:", err)
		printRecord(badConfigRecord(cfg, err))
		os.Exit(1)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-signals
		p.loop.post(func() { p.stop(fmt.Sprintf("stopped (%v)", sig)) })
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

func badConfigRecord(cfg config, err error) map[string]any {
	reason := err.Error()
	return map[string]any{
		"protocol": protocolVersion, "stack": stackName, "version": pionVersion, "settings": settings(),
		"user": cfg.User, "peer": stackName, "state": "failed", "reason": reason, "error": reason,
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
