package main

// The `echo` data channel (netsim/peers/echo.py has the same protocol): the offerer creates it, the
// answerer receives it. Once open each side sends echo_count pings one at a time and answers the other's;
// the first pong marks the peer connected. Then `done`; before closing each side waits (at most linger_s)
// for its own pings and the other's `done`. Messages: {"t": "ping"|"pong", "seq", "ts"} and {"t": "done"}.

import (
	"encoding/json"
	"math"
	"time"

	"github.com/pion/webrtc/v3"
)

type echoState struct {
	channel    *webrtc.DataChannel
	seq        int
	waiting    int // the seq whose pong we wait for, -1 for none
	sentAt     float64
	timer      *time.Timer
	rtts       []float64
	pingsSent  int
	pingsDone  bool
	remoteDone bool
}

// watchChannel forwards a channel's events to the loop; registered at once, so none is missed.
func (p *peer) watchChannel(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		p.loop.post(func() {
			if dc == p.echo.channel {
				p.opened()
			}
		})
	})
	dc.OnClose(func() { p.loop.post(p.checkFinished) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		raw := m.Data
		p.loop.post(func() {
			switch dc {
			case p.echo.channel:
				p.onEcho(dc, raw)
			case p.hold.channel:
				p.onHoldMessage(dc, raw)
			}
		})
	})
}

// adopt takes a channel the offerer created: `hold` when holding, else `echo`.
func (p *peer) adopt(dc *webrtc.DataChannel) {
	if dc.Label() == holdLabel && p.cfg.HoldS > 0 {
		p.hold.channel = dc
		return
	}
	p.attach(dc)
}

func (p *peer) attach(dc *webrtc.DataChannel) {
	p.echo.channel = dc
	if dc.ReadyState() == webrtc.DataChannelStateOpen {
		p.opened()
	}
}

func (p *peer) opened() {
	if _, ok := p.marks["channel_open"]; ok || p.ended {
		return
	}
	p.marks["channel_open"] = now()
	p.note("channel", "open")
	p.watchPair()
	p.ping()
}

func sendJSON(dc *webrtc.DataChannel, msg map[string]any) bool {
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return false
	}
	data, _ := json.Marshal(msg)
	return dc.SendText(string(data)) == nil
}

func (p *peer) onEcho(dc *webrtc.DataChannel, raw []byte) {
	var msg map[string]any
	if json.Unmarshal(raw, &msg) != nil {
		return
	}
	switch msg["t"] {
	case "ping":
		sendJSON(dc, map[string]any{"t": "pong", "seq": msg["seq"], "ts": msg["ts"]})
	case "pong":
		if seq, ok := msg["seq"].(float64); ok && int(seq) == p.echo.waiting {
			p.onPong(now())
		}
	case "done":
		p.echo.remoteDone = true
		p.checkFinished()
	}
}

// ping sends the next ping, or `done` after the last; a pong that misses its wait counts as lost.
func (p *peer) ping() {
	e := &p.echo
	if p.ended {
		return
	}
	if e.seq >= p.cfg.EchoCount || e.channel == nil || e.channel.ReadyState() != webrtc.DataChannelStateOpen {
		sendJSON(e.channel, map[string]any{"t": "done"})
		e.pingsDone = true
		p.checkFinished()
		return
	}
	seq := e.seq
	e.waiting, e.sentAt = seq, now()
	e.pingsSent++
	sendJSON(e.channel, map[string]any{"t": "ping", "seq": seq, "ts": e.sentAt})
	e.timer = p.loop.after(math.Max(p.cfg.LingerS, 1.0), func() {
		if e.waiting == seq {
			e.waiting = -1
			e.seq++
			p.ping()
		}
	})
}

func (p *peer) onPong(got float64) {
	e := &p.echo
	e.timer.Stop()
	e.rtts = append(e.rtts, (got-e.sentAt)*1000)
	e.waiting = -1
	e.seq++
	if !p.connected && !p.ended {
		p.marks["first_echo"] = got
		p.onConnected()
	}
	p.loop.after(p.cfg.EchoIntervalS, p.ping)
}
