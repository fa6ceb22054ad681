package main

// The lab's signaling server (docs/signaling.md): one WebSocket per user, JSON text frames. Frames to the
// target carry `target`; frames from it carry `sender`. A held call may open a fresh connection (the
// server replaces the old one), so every connection has a generation and a closed or replaced one's
// frames are ignored.

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/net/websocket"
)

const (
	sendTimeoutS      = 2.0
	signalingOpenS    = 4.0 // a fresh WebSocket for a restart offer (as the Chromium page)
	reconnectPauseS   = 0.5
	restartAfterDiscS = 2.0 // impolite side: ICE restart after this long in `disconnected`
	restartRetryS     = 2.0 // an unanswered restart offer goes again over a fresh WebSocket
)

type signaling struct {
	ws  *websocket.Conn
	gen int
}

// dial opens the WebSocket and reads the welcome, all within timeoutS.
func dial(cfg *config, timeoutS float64) (*websocket.Conn, map[string]any, error) {
	base := strings.TrimRight(cfg.SignalingURL, "/")
	endpoint := base + "/ws/" + url.PathEscape(cfg.User) + "?token=" + url.QueryEscape(cfg.Token)
	wc, err := websocket.NewConfig(endpoint, "http://netsim.invalid/")
	if err != nil {
		return nil, nil, err
	}
	deadline := time.Now().Add(dur(timeoutS))
	host := wc.Location.Host
	if wc.Location.Port() == "" {
		port := map[string]string{"ws": "80", "wss": "443"}[wc.Location.Scheme]
		host = net.JoinHostPort(wc.Location.Hostname(), port)
	}
	conn, err := (&net.Dialer{Deadline: deadline}).Dial("tcp", host)
	if err != nil {
		return nil, nil, err
	}
	if wc.Location.Scheme == "wss" {
		tc := tls.Client(conn, &tls.Config{ServerName: wc.Location.Hostname(), RootCAs: rootCAs(cfg)})
		conn = tc
	}
	_ = conn.SetDeadline(deadline)
	ws, err := websocket.NewClient(wc, conn)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	var welcome map[string]any
	if err := receive(ws, &welcome); err != nil {
		ws.Close()
		return nil, nil, err
	}
	if welcome["type"] != "welcome" {
		ws.Close()
		return nil, nil, fmt.Errorf("expected a welcome message, got %v", welcome["type"])
	}
	_ = conn.SetDeadline(time.Time{})
	return ws, welcome, nil
}

// rootCAs: the lab CA (ca_file) when given, else the system's (which honour SSL_CERT_FILE).
func rootCAs(cfg *config) *x509.CertPool {
	if cfg.CAFile == nil || *cfg.CAFile == "" {
		return nil
	}
	pem, err := os.ReadFile(*cfg.CAFile)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

func receive(ws *websocket.Conn, out *map[string]any) error {
	var text string
	if err := websocket.Message.Receive(ws, &text); err != nil {
		return err
	}
	return json.Unmarshal([]byte(text), out)
}

// openSignaling connects (off the loop) and calls done on the loop: with the welcome, or with an error.
func (p *peer) openSignaling(timeoutS float64, done func(err error)) {
	go func() {
		ws, welcome, err := dial(&p.cfg, timeoutS)
		p.loop.post(func() {
			if err != nil {
				done(err)
				return
			}
			if p.ended {
				ws.Close()
				done(fmt.Errorf("peer ended"))
				return
			}
			if p.sig.ws != nil {
				p.sig.ws.Close()
			}
			p.sig.gen++
			p.sig.ws = ws
			p.onWelcome(welcome)
			go p.readFrames(ws, p.sig.gen)
			done(nil)
		})
	}()
}

// readFrames posts every frame of one connection to the loop, then its end.
func (p *peer) readFrames(ws *websocket.Conn, gen int) {
	for {
		var msg map[string]any
		var text string
		if err := websocket.Message.Receive(ws, &text); err != nil {
			p.loop.post(func() { p.onSignalingClosed(gen, err) })
			return
		}
		if json.Unmarshal([]byte(text), &msg) != nil {
			continue
		}
		p.loop.post(func() {
			if gen == p.sig.gen {
				p.dispatch(msg)
			}
		})
	}
}

// send writes one frame to the target over the current connection (bounded wait).
func (p *peer) send(payload map[string]any) error {
	ws := p.sig.ws
	if ws == nil {
		return fmt.Errorf("signaling closed")
	}
	payload["target"] = p.cfg.Target
	data, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	_ = ws.SetWriteDeadline(time.Now().Add(dur(sendTimeoutS)))
	return websocket.Message.Send(ws, string(data))
}

func (p *peer) onWelcome(msg map[string]any) {
	if _, ok := p.marks["signed_in"]; !ok {
		p.marks["signed_in"] = now()
	}
	p.note("signaling", "connected")
	presence, _ := msg["presence"].(map[string]any)
	if status, _ := presence[p.cfg.Target].(string); status == "online" || status == "busy" {
		p.onPresent()
	}
}

func (p *peer) onSignalingClosed(gen int, err error) {
	if gen != p.sig.gen || p.ended {
		return
	}
	p.sig.ws = nil
	p.note("signaling", "closed")
	if !p.connected {
		p.fail(fmt.Sprintf("signaling closed (%v)", err))
	} else if p.holding() {
		p.reconnectSignaling()
	}
}

// reconnectSignaling keeps trying while the call is held: a NAT flush or a move breaks the WebSocket's
// TCP connection, and an ICE restart needs signaling.
func (p *peer) reconnectSignaling() {
	if p.reconnecting || !p.holding() {
		return
	}
	p.reconnecting = true
	p.openSignaling(signalingOpenS, func(err error) {
		p.reconnecting = false
		if err == nil {
			p.note("signaling", "reconnected")
			return
		}
		p.loop.after(reconnectPauseS, p.reconnectSignaling)
	})
}

// freshSignaling drops the current connection and opens another, then calls done (one at a time). After a
// move the old connection's source address is gone: frames written to it vanish without an error.
func (p *peer) freshSignaling(done func()) {
	p.freshWaiters = append(p.freshWaiters, done)
	if len(p.freshWaiters) > 1 {
		return
	}
	if p.sig.ws != nil {
		p.sig.ws.Close()
		p.sig.ws = nil
	}
	p.sig.gen++ // the old connection's events no longer count
	p.openSignaling(signalingOpenS, func(err error) {
		if err == nil {
			p.note("signaling", "reconnected")
		} else {
			p.note("signaling", "reconnect-failed")
		}
		waiters := p.freshWaiters
		p.freshWaiters = nil
		for _, w := range waiters {
			w()
		}
	})
}

func (p *peer) dispatch(msg map[string]any) {
	kind, _ := msg["type"].(string)
	switch {
	case kind == "presence":
		if msg["user"] != p.cfg.Target {
			return
		}
		status, _ := msg["status"].(string)
		p.note("remote", status)
		if status == "online" || status == "busy" {
			p.onPresent()
		}
	case kind == "error":
		p.note("signaling-error", fmt.Sprintf("%v: %v", msg["code"], msg["message"]))
	case msg["sender"] != p.cfg.Target:
	case kind == "offer":
		p.onOffer(msg)
	case kind == "answer":
		p.onAnswer(msg)
	case kind == "candidate":
		p.onCandidate(msg)
	case kind == "bye":
		p.fail(fmt.Sprintf("remote gave up: %v", msg["reason"]))
	}
}
