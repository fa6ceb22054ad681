package main

// One peer: its state (owned by the loop goroutine), the PeerConnection and its callbacks, and the run's
// phases: connect under the deadline, then the echoes' end (and a held call), then the record.

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v3"
)

type peer struct {
	cfg          config
	loop         *loop
	t0           float64
	api          *webrtc.API
	pc           *webrtc.PeerConnection
	sig          signaling
	reconnecting bool
	freshWaiters []func()

	states           []map[string]any
	marks            map[string]float64
	candLocal        []string
	candRemote       []string
	sentLines        map[string]bool
	gatheringStarted float64
	gatheringS       *float64
	counts           map[string]int
	makingOffer      bool
	present          bool
	answered         bool
	offerID          int
	localQueue       []string
	descriptionSent  bool
	localMid         string
	localUfrag       string
	remoteUfrag      string
	remoteQueue      []map[string]any
	tracksReceived   []string
	mediaSent        []string
	answers          map[string]string // offer id -> our answer (a restart offer sent again gets it again)

	echo echoState
	hold holdState

	pairs    []map[string]any
	watching bool

	failedWith *string
	connected  bool
	ended      bool
	state      string
	reason     *string
	errText    *string
	deadline   *time.Timer
	finishBy   float64
}

func newPeer(cfg config) *peer {
	p := &peer{
		cfg:       cfg,
		loop:      newLoop(),
		t0:        cfg.T0,
		marks:     map[string]float64{},
		sentLines: map[string]bool{},
		counts:    map[string]int{"offers_sent": 0, "ignored_offers": 0, "rollbacks": 0, "stale_answers": 0},
		answers:   map[string]string{},
		state:     "failed",
		candLocal: []string{}, candRemote: []string{}, tracksReceived: []string{}, mediaSent: []string{},
		states: []map[string]any{}, pairs: []map[string]any{},
	}
	if p.t0 == 0 {
		p.t0 = now()
	}
	p.echo.waiting = -1
	return p
}

// newAPI is Pion with its defaults, except where a lab needs otherwise: logs go to stderr (stdout carries
// only the record), and mDNS is off (a `.local` candidate is dropped, as the aiortc peer does).
func newAPI() (*webrtc.API, error) {
	se := webrtc.SettingEngine{}
	se.LoggerFactory = &logging.DefaultLoggerFactory{
		Writer:          os.Stderr,
		DefaultLogLevel: logging.LogLevelWarn,
		ScopeLevels:     map[string]logging.LogLevel{},
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)), nil
}

func (p *peer) note(what, state string) {
	p.states = append(p.states, map[string]any{"t": round(now()-p.t0, 4), "what": what, "state": state})
}

// start runs first on the loop: the connection, the deadline and signaling.
func (p *peer) start() {
	p.deadline = p.loop.after(p.cfg.DeadlineS-(now()-p.t0), p.onDeadline)
	// The WebSocket dials in its own goroutine while the connection is made: the welcome is handled on
	// the loop after this function, so the connection exists by then.
	p.openSignaling(p.cfg.DeadlineS, func(err error) {
		if err != nil {
			p.fail(fmt.Sprintf("signaling connection failed: %v", err))
		}
	})
	api, err := newAPI()
	if err != nil {
		p.fail(fmt.Sprintf("error: %v", err))
		return
	}
	p.api = api
	pc, err := p.newPC()
	if err != nil {
		p.fail(fmt.Sprintf("error: %v", err))
		return
	}
	p.pc = pc
}

func (p *peer) iceServers() []webrtc.ICEServer {
	servers := []webrtc.ICEServer{} // always explicit: nothing outside the lab is contacted
	for _, s := range p.cfg.ICEServers {
		urls, _ := s.urlList()
		server := webrtc.ICEServer{URLs: urls}
		if s.Username != "" || s.Credential != "" {
			server.Username = s.Username
			server.Credential = s.Credential
			server.CredentialType = webrtc.ICECredentialTypePassword
		}
		servers = append(servers, server)
	}
	return servers
}

func (p *peer) newPC() (*webrtc.PeerConnection, error) {
	policy := webrtc.ICETransportPolicyAll
	if p.cfg.Policy == "relay" {
		policy = webrtc.ICETransportPolicyRelay
	}
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{ICEServers: p.iceServers(), ICETransportPolicy: policy})
	if err != nil {
		return nil, err
	}
	// Events count only while pc is the current connection (the polite peer may replace it).
	post := func(f func()) {
		p.loop.post(func() {
			if pc == p.pc {
				f()
			}
		})
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { post(func() { p.onLocalCandidate(c) }) })
	pc.OnICEGatheringStateChange(func(s webrtc.ICEGathererState) { post(func() { p.onGathering(s) }) })
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) { post(func() { p.onICEState(s) }) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		post(func() {
			p.note("pc", s.String())
			p.onCallState(s)
		})
	})
	pc.OnSignalingStateChange(func(s webrtc.SignalingState) { post(func() { p.note("signaling", s.String()) }) })
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		post(func() { p.adopt(dc) }) // before the channel's own events: they are posted after this
		p.watchChannel(dc)
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		kind := t.Kind().String()
		post(func() { p.tracksReceived = append(p.tracksReceived, kind) })
	})
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) {
		post(func() { p.notePair(now()) })
	})
	return pc, nil
}

func (p *peer) onGathering(s webrtc.ICEGathererState) {
	p.note("gathering", s.String())
	if s == webrtc.ICEGathererStateComplete && p.gatheringStarted > 0 && p.gatheringS == nil {
		g := now() - p.gatheringStarted
		p.gatheringS = &g
	}
}

func (p *peer) onICEState(s webrtc.ICEConnectionState) {
	p.note("ice", s.String())
	if s == webrtc.ICEConnectionStateConnected || s == webrtc.ICEConnectionStateCompleted {
		if _, ok := p.marks["ice_completed"]; !ok {
			p.marks["ice_completed"] = now()
			p.watchPair()
		}
	}
	if s == webrtc.ICEConnectionStateFailed && !p.connected {
		p.fail("ICE failed")
	}
}

// fail ends the session as failed (the first reason wins); once connected, the call ends with it.
func (p *peer) fail(reason string) {
	if p.failedWith != nil || p.ended {
		return
	}
	p.failedWith = &reason
	if !p.connected {
		p.reason = &reason
		p.end(true)
		return
	}
	p.hold.done = true // a held call ends with it (as the Chromium page's hold loop does)
	p.checkFinished()
}

func (p *peer) onDeadline() {
	if p.connected || p.ended {
		return
	}
	p.fail(fmt.Sprintf("not connected within %s s (%s)", strconv.FormatFloat(p.cfg.DeadlineS, 'g', -1, 64), p.whereStuck()))
}

func (p *peer) whereStuck() string {
	if !p.present || p.pc == nil {
		return "signaling"
	}
	if _, ok := p.marks["channel_open"]; ok {
		return "data channel open but no echo"
	}
	return fmt.Sprintf("ice=%s signaling=%s gathering=%s", p.pc.ICEConnectionState(), p.pc.SignalingState(),
		p.pc.ICEGatheringState())
}

// onConnected: the first pong came back.
func (p *peer) onConnected() {
	p.connected = true
	p.state = "connected"
	if p.deadline != nil {
		p.deadline.Stop()
	}
	p.signalConnected()
	if p.cfg.HoldS > 0 {
		p.startHold()
	}
	p.finishBy = now() + p.cfg.LingerS
	p.loop.after(p.cfg.LingerS, p.checkFinished)
}

// checkFinished ends the run once our pings are done and the other side said `done` (at most linger_s),
// and a held call is over. It runs on each of those events (and at linger_s), not on a poll.
func (p *peer) checkFinished() {
	if p.ended || !p.connected {
		return
	}
	open := p.echo.channel != nil && p.echo.channel.ReadyState() == webrtc.DataChannelStateOpen
	echoed := !open || (p.echo.pingsDone && p.echo.remoteDone) || now() >= p.finishBy || p.failedWith != nil
	if echoed && (p.cfg.HoldS <= 0 || p.hold.done) {
		p.end(false)
	}
}

// signalConnected writes {"t": first echo} atomically to connected_file: the session times events from it.
func (p *peer) signalConnected() {
	if p.cfg.ConnectedFile == nil || *p.cfg.ConnectedFile == "" {
		return
	}
	path := *p.cfg.ConnectedFile
	data := fmt.Sprintf("{\"t\": %s}", strconv.FormatFloat(p.marks["first_echo"], 'f', 6, 64))
	if os.WriteFile(path+".tmp", []byte(data), 0o644) == nil {
		_ = os.Rename(path+".tmp", path)
	}
}

// end stops the run: the pair read one last time, `bye` when we give up, then the loop stops and main
// closes the connection and prints the record.
func (p *peer) end(tellRemote bool) {
	if p.ended {
		return
	}
	p.ended = true
	if p.pc != nil && p.pc.ConnectionState() != webrtc.PeerConnectionStateClosed {
		p.notePair(now())
	}
	if tellRemote && p.sig.ws != nil {
		reason := ""
		if p.failedWith != nil {
			reason = *p.failedWith
		}
		_ = p.send(map[string]any{"type": "bye", "reason": reason})
	}
	p.loop.stop()
}

// stop is SIGTERM: the session wants the peer gone now (bye, close, record).
func (p *peer) stop(why string) {
	p.note("peer", "stopped")
	if p.failedWith == nil {
		p.failedWith = &why
	}
	if !p.connected && p.reason == nil {
		p.reason = &why
	}
	p.end(true)
}
