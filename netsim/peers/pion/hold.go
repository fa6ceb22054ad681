package main

// A held call (netsim/peers/hold.py has the same protocol): echoes every interval_s on the unordered
// `hold` channel without retransmissions, {"t": "hping", "seq", "ts"} answered by {"t": "hpong", "seq"};
// interval_s = 0 sends only 3 checks 0.25 s apart at the end. After the last echo a side keeps answering
// for 1 s. While held, the impolite side restarts ICE (when both sides can) on `failed`, or after 2 s of
// `disconnected`, sending the restart offer over a fresh WebSocket (the Chromium page does the same).

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/pion/webrtc/v3"
)

const (
	holdLabel     = "hold"
	checkCount    = 3
	checkSpacingS = 0.25
	answerGraceS  = 1.0
)

type holdState struct {
	channel    *webrtc.DataChannel
	echoes     []map[string]any // {"seq", "sent", "answered"}
	end        float64
	done       bool
	closed     map[string]any
	restarts   []map[string]any
	discTimer  *time.Timer
	sendErrors int
}

func (p *peer) over() bool { return p.failedWith != nil || p.ended }

func (p *peer) holding() bool {
	return p.hold.end > 0 && now() < p.hold.end+answerGraceS && !p.over()
}

func (p *peer) startHold() {
	start := p.marks["first_echo"]
	p.hold.end = start + p.cfg.HoldS
	if p.cfg.IntervalS > 0 {
		p.holdTick(start)
		return
	}
	p.loop.after(p.hold.end-now(), func() { p.holdCheck(0) })
}

func (p *peer) holdTick(t float64) {
	if t > p.hold.end || p.over() {
		p.holdGrace()
		return
	}
	p.loop.after(t-now(), func() {
		if !p.over() {
			p.holdPing()
		}
		p.holdTick(t + p.cfg.IntervalS)
	})
}

func (p *peer) holdCheck(i int) {
	if i >= checkCount || p.over() {
		p.holdGrace()
		return
	}
	p.holdPing()
	p.loop.after(checkSpacingS, func() { p.holdCheck(i + 1) })
}

// holdGrace keeps answering for answerGraceS after our last echo (not when the call is already over).
func (p *peer) holdGrace() {
	if p.over() {
		p.hold.done = true
		p.checkFinished()
		return
	}
	p.loop.after(answerGraceS, func() {
		p.hold.done = true
		p.checkFinished()
	})
}

func (p *peer) holdPing() {
	seq, sent := len(p.hold.echoes), now()
	p.hold.echoes = append(p.hold.echoes, map[string]any{"seq": seq, "sent": sent, "answered": nil})
	if !sendJSON(p.hold.channel, map[string]any{"t": "hping", "seq": seq, "ts": sent}) {
		p.hold.sendErrors++
	}
}

func (p *peer) onHoldMessage(dc *webrtc.DataChannel, raw []byte) {
	var msg map[string]any
	if json.Unmarshal(raw, &msg) != nil {
		return
	}
	seq, _ := msg["seq"].(float64)
	switch msg["t"] {
	case "hping":
		sendJSON(dc, map[string]any{"t": "hpong", "seq": msg["seq"]})
	case "hpong":
		if i := int(seq); i >= 0 && i < len(p.hold.echoes) && p.hold.echoes[i]["answered"] == nil {
			p.hold.echoes[i]["answered"] = now()
		}
	}
}

// onCallState follows the connection while held: restarts, and a connection lost for good.
func (p *peer) onCallState(s webrtc.PeerConnectionState) {
	h := &p.hold
	if h.end == 0 || now() >= h.end {
		return
	}
	if n := len(h.restarts); s == webrtc.PeerConnectionStateConnected && n > 0 && h.restarts[n-1]["connected"] == nil {
		h.restarts[n-1]["connected"] = now()
		p.note("restart", "connected")
	}
	if h.discTimer != nil {
		h.discTimer.Stop()
	}
	failed, disconnected := s == webrtc.PeerConnectionStateFailed, s == webrtc.PeerConnectionStateDisconnected
	if (failed || disconnected) && p.cfg.Restart {
		p.freshSignaling(func() {})
	}
	canRestart := p.cfg.Restart && !p.cfg.Polite
	switch {
	case disconnected && canRestart:
		h.discTimer = p.loop.after(restartAfterDiscS, func() {
			if p.pc.ConnectionState() == webrtc.PeerConnectionStateDisconnected {
				p.restartICE("disconnected")
			}
		})
	case failed && canRestart:
		p.restartICE("failed")
	case (failed && !p.cfg.Restart) || s == webrtc.PeerConnectionStateClosed:
		if h.closed == nil {
			h.closed = map[string]any{"t": now(), "reason": fmt.Sprintf("connection %s", s)}
		}
	}
}

// restartICE: a restart offer (new ufrag, fresh gathering), sent over a fresh WebSocket and again every
// 2 s while unanswered, as the current local description (by then it carries every candidate gathered).
func (p *peer) restartICE(reason string) {
	if p.pc.SignalingState() != webrtc.SignalingStateStable || !p.holding() {
		return
	}
	p.hold.restarts = append(p.hold.restarts, map[string]any{"t": now(), "reason": reason, "connected": nil})
	p.note("restart", reason)
	p.descriptionSent = false
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.note("restart", fmt.Sprintf("failed: %v", err))
		return
	}
	p.noteLocal(offer.SDP)
	p.offerID++
	p.sendRestart(p.offerID)
}

func (p *peer) sendRestart(id int) {
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer || p.offerID != id || !p.holding() {
		return
	}
	p.freshSignaling(func() {
		if p.ended {
			return
		}
		sdp := p.pc.LocalDescription().SDP
		_ = p.sendDescription("offer", sdp, id)
		p.counts["offers_sent"]++
		p.flushLocal()
		p.loop.after(restartRetryS, func() { p.sendRestart(id) })
	})
}

func (p *peer) callRecord() map[string]any {
	echoes := []map[string]any{}
	answered := 0
	for _, e := range p.hold.echoes {
		echoes = append(echoes, map[string]any{"seq": e["seq"], "sent": roundAny(e["sent"], 6),
			"answered": roundAny(e["answered"], 6)})
		if e["answered"] != nil {
			answered++
		}
	}
	var closed any
	if p.hold.closed != nil {
		closed = map[string]any{"t": roundAny(p.hold.closed["t"], 6), "reason": p.hold.closed["reason"]}
	}
	restarts := []map[string]any{}
	for _, r := range p.hold.restarts {
		restarts = append(restarts, map[string]any{"t": roundAny(r["t"], 6), "reason": r["reason"],
			"connected": roundAny(r["connected"], 6)})
	}
	restart := "unsupported by the remote"
	if p.cfg.Restart {
		restart = "supported"
	}
	return map[string]any{
		"hold_s": p.cfg.HoldS, "interval_s": p.cfg.IntervalS, "echoes": echoes, "sent": len(echoes),
		"answered": answered, "closed": closed, "restart": restart, "restarts": restarts,
	}
}
