package main

// Perfect negotiation, as the aiortc peer and the Chromium page do it (docs/peers.md): an incoming offer
// collides when we are making an offer or are not stable; the impolite peer ignores it, the polite one
// rolls back (Pion has a real rollback) and answers. Offers carry an `id` that the answer echoes. Pion
// trickles: descriptions go out as created, candidates follow in `candidate` frames, held until our
// description went out.

import (
	"fmt"
	"strings"

	"github.com/pion/webrtc/v3"
)

// onPresent: the target is on the server; an offering peer that has not answered makes its offer.
func (p *peer) onPresent() {
	if p.present {
		return
	}
	p.present = true
	p.note("signaling", "peer-present")
	if p.cfg.Offer && !p.answered {
		p.makingOffer = true // a later offer is a collision
		p.makeOffer()
	}
}

func (p *peer) makeOffer() {
	pc := p.pc
	dc, err := pc.CreateDataChannel("echo", nil)
	if err != nil {
		p.fail(fmt.Sprintf("offer failed: %v", err))
		return
	}
	p.attach(dc)
	p.watchChannel(dc)
	if p.cfg.HoldS > 0 {
		ordered, none := false, uint16(0)
		hc, err := pc.CreateDataChannel(holdLabel, &webrtc.DataChannelInit{Ordered: &ordered, MaxRetransmits: &none})
		if err != nil {
			p.fail(fmt.Sprintf("offer failed: %v", err))
			return
		}
		p.hold.channel = hc
		p.watchChannel(hc)
	}
	if p.cfg.Media {
		p.addMedia()
	}
	started := now()
	p.gatheringStarted = started
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		p.makingOffer = false
		p.fail(fmt.Sprintf("offer failed: %v", err))
		return
	}
	p.noteLocal(offer.SDP)
	p.marks["offer"] = started
	p.offerID++
	id := p.offerID
	send := func() {
		p.makingOffer = false
		if p.answered || pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer || p.ended {
			return
		}
		if p.sendDescription("offer", offer.SDP, id) == nil {
			p.counts["offers_sent"]++
		}
		p.flushLocal()
	}
	if p.cfg.OfferDelayS <= 0 {
		send()
		return
	}
	paused := now()
	p.loop.after(p.cfg.OfferDelayS, func() {
		if !p.answered {
			p.marks["offer"] += now() - paused // the deliberate delay is not negotiation time
		}
		send()
	})
}

func (p *peer) onOffer(msg map[string]any) {
	if p.connected {
		p.onRestartOffer(msg)
		return
	}
	pc := p.pc
	collision := p.makingOffer || pc.SignalingState() != webrtc.SignalingStateStable
	if collision && !p.cfg.Polite {
		p.counts["ignored_offers"]++
		p.note("signaling", "ignored-offer")
		return
	}
	if collision {
		if !p.replaceConnection() {
			return
		}
		pc = p.pc
	}
	p.answered = true
	p.makingOffer = false
	p.marks["offer"] = now() // the answerer's negotiation starts here
	sdp, _ := msg["sdp"].(string)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		p.fail(fmt.Sprintf("error: %v", err))
		return
	}
	p.remoteUfrag = sdpValue(sdp, "a=ice-ufrag:")
	p.candRemote = sdpCandidates(sdp)
	p.flushRemote()
	if p.cfg.Media {
		p.addMedia()
	}
	if p.gatheringStarted == 0 {
		p.gatheringStarted = now()
	}
	p.answer(msg["id"])
}

// replaceConnection is the polite peer's rollback. Pion 3.1.56 has none (its signaling state machine refuses
// SetLocalDescription(rollback) in have-local-offer), so, as the aiortc peer does, the connection holding
// our offer is retired and the offer is answered on a fresh one: one more candidate gathering.
func (p *peer) replaceConnection() bool {
	old := p.pc
	pc, err := p.newPC()
	if err != nil {
		p.fail(fmt.Sprintf("error: %v", err))
		return false
	}
	p.pc = pc // the old connection's events no longer count (each handler checks)
	p.counts["rollbacks"]++
	p.note("signaling", "rolled-back")
	p.echo.channel, p.hold.channel = nil, nil
	delete(p.marks, "offer")
	p.gatheringStarted, p.gatheringS = 0, nil
	p.candLocal, p.sentLines, p.localQueue = []string{}, map[string]bool{}, nil
	p.descriptionSent = false
	go old.Close() //nolint:errcheck // in the background: Close waits for Pion's goroutines
	return true
}

// answer creates, applies and sends our answer to the offer `id`; our candidates follow it.
func (p *peer) answer(id any) {
	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		p.fail(fmt.Sprintf("error: answer: %v", err))
		return
	}
	p.noteLocal(answer.SDP)
	p.answers[fmt.Sprint(id)] = answer.SDP
	_ = p.sendDescription("answer", answer.SDP, id)
	p.flushLocal()
}

// onRestartOffer: an ICE restart of the connected call (only the impolite side restarts, so restarts never
// collide). The same offer sent again (its signaling reconnected) gets the same answer.
func (p *peer) onRestartOffer(msg map[string]any) {
	sdp, _ := msg["sdp"].(string)
	if previous, ok := p.answers[fmt.Sprint(msg["id"])]; ok {
		for _, line := range sdpCandidates(sdp) {
			p.addRemote(map[string]any{"candidate": line, "sdpMLineIndex": 0.0})
		}
		_ = p.sendDescription("answer", previous, msg["id"])
		return
	}
	p.note("restart", "offer-received")
	p.descriptionSent = false
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		p.note("restart", fmt.Sprintf("refused: %v", err))
		return
	}
	p.remoteUfrag = sdpValue(sdp, "a=ice-ufrag:")
	p.candRemote = append(p.candRemote, sdpCandidates(sdp)...)
	p.flushRemote()
	p.answer(msg["id"])
}

func (p *peer) onAnswer(msg map[string]any) {
	pc := p.pc
	id, ok := msg["id"].(float64)
	if pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer || !ok || int(id) != p.offerID {
		p.counts["stale_answers"]++
		return
	}
	sdp, _ := msg["sdp"].(string)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.fail(fmt.Sprintf("error: %v", err))
		return
	}
	p.remoteUfrag = sdpValue(sdp, "a=ice-ufrag:")
	p.candRemote = sdpCandidates(sdp)
	p.flushRemote()
}

// sendDescription sends an offer or answer; with hide_host, without host candidates.
func (p *peer) sendDescription(kind, sdp string, id any) error {
	sdp = outgoingSDP(sdp, p.cfg.HideHost)
	for _, line := range sdpCandidates(sdp) {
		if !p.sentLines[line] {
			p.sentLines[line] = true
			p.candLocal = append(p.candLocal, line)
		}
	}
	return p.send(map[string]any{"type": kind, "sdp": sdp, "id": id})
}

// noteLocal keeps what trickled candidates need from our latest local description: its first mid, ufrag.
func (p *peer) noteLocal(sdp string) {
	p.localMid = sdpValue(sdp, "a=mid:")
	p.localUfrag = sdpValue(sdp, "a=ice-ufrag:")
}

// --- trickle ---------------------------------------------------------------------------------------------

func (p *peer) onLocalCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // end of gathering: the state note says it
	}
	if p.cfg.HideHost && c.Typ == webrtc.ICECandidateTypeHost {
		return
	}
	line := c.ToJSON().Candidate
	if p.descriptionSent {
		p.sendCandidate(line)
	} else {
		p.localQueue = append(p.localQueue, line)
	}
}

func (p *peer) sendCandidate(line string) {
	if p.sentLines[line] {
		return // already in a description we sent
	}
	p.sentLines[line] = true
	p.candLocal = append(p.candLocal, line)
	_ = p.send(map[string]any{
		"type": "candidate", "candidate": line, "sdpMid": p.localMid, "sdpMLineIndex": 0,
		"usernameFragment": p.localUfrag,
	})
}

func (p *peer) flushLocal() {
	p.descriptionSent = true
	queued := p.localQueue
	p.localQueue = nil
	for _, line := range queued {
		p.sendCandidate(line)
	}
}

func (p *peer) onCandidate(msg map[string]any) {
	if p.pc.RemoteDescription() == nil {
		p.remoteQueue = append(p.remoteQueue, msg)
		return
	}
	p.addRemote(msg)
}

func (p *peer) flushRemote() {
	queued := p.remoteQueue
	p.remoteQueue = nil
	for _, msg := range queued {
		p.addRemote(msg)
	}
}

// addRemote adds a trickled candidate of the current remote description: end-of-candidates, a candidate
// of another description (an offer we ignored) and `.local` names (mDNS is off) are not added.
func (p *peer) addRemote(msg map[string]any) {
	line, _ := msg["candidate"].(string)
	if line == "" {
		return
	}
	if ufrag, _ := msg["usernameFragment"].(string); ufrag != "" && ufrag != p.remoteUfrag {
		p.note("candidate-ignored", "another description")
		return
	}
	if fields := strings.Fields(line); len(fields) > 4 && strings.HasSuffix(fields[4], ".local") {
		p.note("candidate", "mdns-unresolved")
		return
	}
	init := webrtc.ICECandidateInit{Candidate: line}
	if mid, ok := msg["sdpMid"].(string); ok {
		init.SDPMid = &mid
	}
	if err := p.pc.AddICECandidate(init); err != nil {
		p.note("candidate", fmt.Sprintf("refused: %v", err))
		return
	}
	for _, known := range p.candRemote {
		if known == line {
			return
		}
	}
	p.candRemote = append(p.candRemote, line)
}

// --- SDP helpers -----------------------------------------------------------------------------------------

// sdpCandidates: the candidate lines of an SDP, without `a=`.
func sdpCandidates(sdp string) []string {
	out := []string{}
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "a=candidate:") {
			out = append(out, line[2:])
		}
	}
	return out
}

// sdpValue: the value of the first line starting with prefix (e.g. "a=ice-ufrag:").
func sdpValue(sdp, prefix string) string {
	for _, line := range strings.Split(sdp, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line[len(prefix):])
		}
	}
	return ""
}

// outgoingSDP drops host candidates with hide_host (a browser whose mDNS names the other side can't
// resolve looks like this to it).
func outgoingSDP(sdp string, hideHost bool) string {
	if !hideHost {
		return sdp
	}
	lines := strings.Split(sdp, "\r\n")
	kept := lines[:0]
	for _, line := range lines {
		if !(strings.HasPrefix(line, "a=candidate:") && strings.Contains(line, " typ host")) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\r\n")
}
