// netsim's Chromium peer: the browser side of netsim.peers (docs/peers.md). Same protocols as the aiortc
// peer (netsim/peers/agent.py): the lab's signaling server, perfect negotiation with the same roles and
// offer ids, the `echo` data channel; plus trickle ICE and the selected pair over time.
// The controller (netsim/peers/chromium.py) calls window.netsimPeer(cfg), which resolves to the raw PEER
// record, and window.netsimStop(user, reason) to end a peer early. Times are on the controller's
// time.monotonic() clock: performance.now() / 1000 + cfg.clock_offset.
"use strict";

const KEEP_INTERVAL_S = 0.25; // pings both ways while the pair settles (the controlled side follows data)
const SETTLE_EXTRA_S = 3.0; // how much longer than settle_s a peer waits for a stable pair
const POLL_S = 0.1; // selected-pair poll, besides the selectedcandidatepairchange event
const PONG_TIMEOUT_S = 1.0; // a pong later than this counts as lost; the next ping goes out
// A held call (netsim/peers/hold.py has the same protocol on the same unordered `hold` channel).
const HOLD_LABEL = "hold";
const CHECK_COUNT = 3; // interval_s = 0: echoes at the end of the hold only ...
const CHECK_SPACING_S = 0.25;
const ANSWER_GRACE_S = 1.0; // after our last echo: wait for answers, keep answering the other side
// ICE restart (impolite side only, so restarts never collide): at once on `failed`, or after this long in
// `disconnected`. Chromium says disconnected ~5.3 s after the path broke and failed ~15.4 s after; outages
// of 6-12 s come back by themselves, and a restart does not hurt those (0.4 s, the data channel stays
// open), while a path whose NAT port changed never comes back without one: 2 s more of disconnected
// (about 7 s without a response) is the point where waiting longer only prolongs the outage.
const RESTART_AFTER_DISCONNECTED_S = 2.0;
const RESTART_RETRY_S = 2.0; // no answer to a restart offer (signaling reconnecting): send it again
const SIGNALING_OPEN_S = 4.0; // a fresh WebSocket for a restart offer: in the lab ~10 ms, a loaded machine more
const peers = {};

const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));
const round = (x, n) => (x === null || x === undefined ? null : Number(x.toFixed(n)));
const sdpCandidates = (sdp) =>
  sdp.split(/\r?\n/).filter((l) => l.startsWith("a=candidate:")).map((l) => l.slice(2));

class Failed extends Error {}

// PeerConfig's defaults (netsim/peers/agent.py) for keys the session leaves out.
const DEFAULTS = {
  policy: "all",
  deadline_s: 10.0,
  offer: false,
  offer_delay_s: 0.0,
  echo_count: 5,
  echo_interval_s: 0.005,
  linger_s: 2.0,
  media: false,
  hide_host: false,
  settle_s: 1.0,
  ice_servers: [],
  hold_s: 0.0,
  interval_s: 1.0,
  restart: false,
};

class Peer {
  constructor(cfg) {
    this.cfg = { ...DEFAULTS, ...cfg };
    cfg = this.cfg;
    this.t0 = cfg.t0 !== null && cfg.t0 !== undefined ? cfg.t0 : this.now();
    this.states = [];
    this.marks = {};
    this.candidates = { local: [], remote: [] };
    this.gatheringStarted = null;
    this.gathering_s = null;
    this.counts = { offers_sent: 0, ignored_offers: 0, rollbacks: 0, stale_answers: 0 };
    this.makingOffer = false;
    this.present = false;
    this.answered = false;
    this.offerId = 0;
    this.pc = null;
    this.channel = null;
    this.pongs = new Map();
    this.rtts = [];
    this.pingsSent = 0;
    this.remoteDone = false;
    this.pairs = []; // {t, local_type, remote_type, local, remote, role, turn_transport}
    this.localQueue = []; // our candidates, held until our description went out
    this.descriptionSent = false;
    this.remoteQueue = []; // theirs, held until their description is applied
    this.tracksReceived = [];
    this.mediaSent = [];
    this.failedWith = null;
    this.failWaiters = [];
    this.connectedWaiters = [];
    this.connected = false;
    this.holdChannel = null;
    this.holdEchoes = []; // {seq, sent, answered}
    this.holdEnd = null;
    this.closed = null; // {t, reason}: the connection failed or closed while held
    this.restarts = []; // {t, reason, connected}
    this.answers = new Map(); // offer id -> our answer sdp (a re-sent restart offer gets the same answer)
    this.disconnectTimer = null;
    this.refreshing = null; // a fresh signaling connection being opened (freshSignaling)
  }

  now() {
    return performance.now() / 1000 + this.cfg.clock_offset;
  }

  note(what, state) {
    this.states.push({ t: round(this.now() - this.t0, 4), what, state });
  }

  fail(reason) {
    if (this.failedWith !== null) return;
    this.failedWith = reason;
    this.failWaiters.forEach((f) => f());
  }

  failed() {
    return new Promise((resolve) => {
      if (this.failedWith !== null) resolve();
      else this.failWaiters.push(resolve);
    });
  }

  async send(payload) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new Failed("signaling closed");
    this.ws.send(JSON.stringify({ ...payload, target: this.cfg.target }));
  }

  // --- signaling -------------------------------------------------------------------------------------
  openSignaling() {
    const { signaling_url: url, user, token } = this.cfg;
    const endpoint = `${url.replace(/\/$/, "")}/ws/${encodeURIComponent(user)}?token=${encodeURIComponent(token)}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(endpoint);
      this.ws = ws;
      ws.onmessage = (ev) => {
        if (ws !== this.ws) return;
        const msg = JSON.parse(ev.data);
        if (msg.type === "welcome") {
          if (!("signed_in" in this.marks)) this.marks.signed_in = this.now();
          this.note("signaling", "connected");
          resolve();
          const status = (msg.presence || {})[this.cfg.target];
          if (status === "online" || status === "busy") this.onPresent();
          return;
        }
        this.dispatch(msg).catch((e) => this.fail(`error: ${e}`));
      };
      ws.onerror = () => reject(new Failed("signaling connection failed"));
      ws.onclose = (ev) => {
        reject(new Failed(`signaling closed (${ev.code})`));
        if (ws !== this.ws) return;
        this.note("signaling", `closed ${ev.code}`);
        if (!this.connected) this.fail(`signaling closed (${ev.code})`);
        else if (this.holding()) this.reconnectSignaling();
      };
    });
  }

  // A held call keeps signaling: a NAT flush or a move breaks the WebSocket's TCP connection, and an ICE
  // restart needs it. The server replaces our old connection with the new one.
  reconnectSignaling() {
    if (this.reconnecting) return;
    this.reconnecting = (async () => {
      while (this.holding()) {
        try {
          await this.openSignaling();
          this.note("signaling", "reconnected");
          break;
        } catch (e) {
          await sleep(0.5);
        }
      }
      this.reconnecting = null;
    })();
  }

  holding() {
    return this.holdEnd !== null && this.now() < this.holdEnd + ANSWER_GRACE_S && this.failedWith === null;
  }

  async dispatch(msg) {
    if (msg.type === "presence") {
      if (msg.user !== this.cfg.target) return;
      this.note("remote", String(msg.status));
      if (msg.status === "online" || msg.status === "busy") this.onPresent();
    } else if (msg.type === "error") {
      this.note("signaling-error", `${msg.code}: ${msg.message}`);
    } else if (msg.sender !== this.cfg.target) {
      return;
    } else if (msg.type === "offer") {
      await this.onOffer(msg);
    } else if (msg.type === "answer") {
      await this.onAnswer(msg);
    } else if (msg.type === "candidate") {
      await this.onCandidate(msg);
    } else if (msg.type === "bye") {
      this.fail(`remote gave up: ${msg.reason}`);
    }
  }

  // --- the connection --------------------------------------------------------------------------------
  newPc() {
    const servers = this.cfg.ice_servers.map((s) => {
      const out = { urls: s.urls };
      if (s.username) out.username = s.username;
      if (s.credential) out.credential = s.credential;
      return out;
    });
    const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: this.cfg.policy });
    pc.onicecandidate = (ev) => this.onLocalCandidate(ev.candidate);
    pc.onicegatheringstatechange = () => {
      this.note("gathering", pc.iceGatheringState);
      if (pc.iceGatheringState === "complete" && this.gatheringStarted !== null && this.gathering_s === null) {
        this.gathering_s = this.now() - this.gatheringStarted;
      }
    };
    pc.oniceconnectionstatechange = () => {
      const state = pc.iceConnectionState;
      this.note("ice", state);
      if ((state === "connected" || state === "completed") && !("ice_completed" in this.marks)) {
        this.marks.ice_completed = this.now();
        this.watchPair();
      }
      if (state === "failed" && !this.connected) this.fail("ICE failed");
    };
    pc.onconnectionstatechange = () => {
      this.note("pc", pc.connectionState);
      this.onCallState(pc.connectionState);
    };
    pc.onsignalingstatechange = () => this.note("signaling", pc.signalingState);
    pc.ondatachannel = (ev) => (ev.channel.label === HOLD_LABEL ? this.attachHold(ev.channel) : this.attach(ev.channel));
    pc.ontrack = (ev) => this.tracksReceived.push(ev.track.kind);
    pc.onicecandidateerror = (ev) => this.note("candidate-error", `${ev.errorCode} ${ev.url}`);
    return pc;
  }

  addMedia() {
    // Synthetic tracks (no getUserMedia on a plain-http page): a canvas and an oscillator.
    const canvas = document.createElement("canvas");
    canvas.width = 160;
    canvas.height = 120;
    const ctx = canvas.getContext("2d");
    setInterval(() => {
      ctx.fillStyle = `hsl(${Date.now() % 360}, 60%, 50%)`;
      ctx.fillRect(0, 0, 160, 120);
    }, 40);
    const audio = new AudioContext();
    const osc = audio.createOscillator();
    const dest = audio.createMediaStreamDestination();
    osc.connect(dest);
    osc.start();
    const stream = new MediaStream([...dest.stream.getAudioTracks(), ...canvas.captureStream(25).getVideoTracks()]);
    stream.getTracks().forEach((track) => this.pc.addTrack(track, stream));
    this.mediaSent = ["audio", "video"];
  }

  onLocalCandidate(candidate) {
    if (candidate === null || !candidate.candidate) return; // end of gathering: the state note says it
    const init = candidate.toJSON();
    if (this.descriptionSent) this.sendCandidate(init);
    else this.localQueue.push(init);
  }

  sendCandidate(init) {
    this.candidates.local.push(init.candidate);
    this.send({ type: "candidate", ...init }).catch(() => {});
  }

  flushLocal() {
    this.descriptionSent = true;
    const queued = this.localQueue;
    this.localQueue = [];
    queued.forEach((init) => this.sendCandidate(init));
  }

  // --- perfect negotiation (Chromium rolls back for real; the counts match the aiortc peer's) ---------
  onPresent() {
    if (this.present) return;
    this.present = true;
    this.note("signaling", "peer-present");
    if (this.cfg.offer && !this.answered) {
      this.makingOffer = true; // synchronously, as in the aiortc peer: a later offer is a collision
      this.makeOffer().catch((e) => this.fail(`offer failed: ${e}`));
    }
  }

  async makeOffer() {
    const pc = this.pc;
    try {
      this.attach(pc.createDataChannel("echo"));
      if (this.cfg.hold_s > 0) this.attachHold(pc.createDataChannel(HOLD_LABEL, { ordered: false, maxRetransmits: 0 }));
      if (this.cfg.media) this.addMedia();
      const started = this.now();
      this.gatheringStarted = started;
      await pc.setLocalDescription();
      if (pc !== this.pc || this.answered) return;
      this.marks.offer = started;
      this.offerId += 1;
      if (this.cfg.offer_delay_s > 0) {
        const paused = this.now();
        await sleep(this.cfg.offer_delay_s);
        this.marks.offer += this.now() - paused; // the deliberate delay is not negotiation time
      }
      if (pc.signalingState !== "have-local-offer" || this.answered) return;
      await this.send({ type: "offer", sdp: pc.localDescription.sdp, id: this.offerId });
      this.counts.offers_sent += 1;
      this.flushLocal();
    } finally {
      this.makingOffer = false;
    }
  }

  async onOffer(msg) {
    if (this.connected) return this.onRestartOffer(msg);
    const collision = this.makingOffer || this.pc.signalingState !== "stable";
    if (collision && !this.cfg.polite) {
      this.counts.ignored_offers += 1;
      this.note("signaling", "ignored-offer");
      return;
    }
    if (collision) {
      // The polite peer's rollback: setRemoteDescription(offer) rolls our offer back. Our own echo
      // channel and queued candidates belonged to that offer.
      this.counts.rollbacks += 1;
      this.note("signaling", "rolled-back");
      if (this.channel) this.channel.close();
      this.channel = null;
      this.localQueue = [];
      delete this.marks.offer;
      this.gathering_s = null;
    }
    this.answered = true;
    this.makingOffer = false;
    this.marks.offer = this.now();
    await this.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    this.candidates.remote = sdpCandidates(msg.sdp);
    await this.flushRemote();
    if (this.cfg.media) this.addMedia();
    this.gatheringStarted = this.now();
    this.gathering_s = null;
    await this.pc.setLocalDescription();
    await this.send({ type: "answer", sdp: this.pc.localDescription.sdp, id: msg.id });
    this.flushLocal();
  }

  async onRestartOffer(msg) {
    // An ICE restart offer of the other side (only the impolite side restarts: no collision). The same
    // offer sent again (its signaling reconnected) gets the same answer.
    if (this.answers.has(msg.id)) {
      // Sent again: its candidates may be ones whose trickle we never got.
      for (const line of sdpCandidates(msg.sdp)) await this.addRemote({ candidate: line, sdpMLineIndex: 0 });
      await this.send({ type: "answer", sdp: this.answers.get(msg.id), id: msg.id });
      return;
    }
    this.note("restart", "offer-received");
    this.descriptionSent = false;
    await this.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    this.candidates.remote.push(...sdpCandidates(msg.sdp));
    await this.flushRemote();
    await this.pc.setLocalDescription();
    this.answers.set(msg.id, this.pc.localDescription.sdp);
    await this.send({ type: "answer", sdp: this.pc.localDescription.sdp, id: msg.id });
    this.flushLocal();
  }

  // --- a held call: state, ICE restart ---------------------------------------------------------------
  onCallState(state) {
    if (this.holdEnd === null || this.now() >= this.holdEnd) return;
    const last = this.restarts[this.restarts.length - 1];
    if (state === "connected" && last && last.connected === null) {
      last.connected = this.now();
      this.note("restart", "connected");
    }
    clearTimeout(this.disconnectTimer);
    // Whichever side lost its path may have lost its signaling connection with it, silently (a move): both
    // sides open a fresh one, so the polite side can still receive the restart offer.
    if ((state === "disconnected" || state === "failed") && this.cfg.restart) {
      this.freshSignaling().catch(() => {});
    }
    const canRestart = this.cfg.restart && !this.cfg.polite;
    if (state === "disconnected" && canRestart) {
      this.disconnectTimer = setTimeout(() => {
        if (this.pc.connectionState === "disconnected") this.restartIce("disconnected");
      }, RESTART_AFTER_DISCONNECTED_S * 1000);
    } else if (state === "failed" && canRestart) {
      this.restartIce("failed");
    } else if ((state === "failed" && !this.cfg.restart) || state === "closed") {
      if (this.closed === null) this.closed = { t: this.now(), reason: `connection ${state}` };
    }
  }

  async restartIce(reason) {
    if (this.pc.signalingState !== "stable" || !this.holding()) return;
    this.restarts.push({ t: this.now(), reason, connected: null });
    this.note("restart", reason);
    this.pc.restartIce();
    this.descriptionSent = false;
    await this.pc.setLocalDescription();
    this.offerId += 1;
    const id = this.offerId;
    // The path that broke was the signaling connection's path too: after a move its TCP connection's source
    // address is gone, so it takes our frames and nothing comes back, not even a reset or a close event.
    // Every try goes over a fresh WebSocket (our candidates queue meanwhile), and unanswered it is sent
    // again.
    for (let tries = 0; this.pc.signalingState === "have-local-offer" && this.offerId === id && this.holding(); tries++) {
      await this.freshSignaling();
      // The current description: on a second try it carries every candidate gathered so far, since those
      // trickled after the first one may have gone into a dead connection.
      await this.send({ type: "offer", sdp: this.pc.localDescription.sdp, id }).catch(() => {});
      this.counts.offers_sent += 1;
      this.flushLocal();
      await sleep(RESTART_RETRY_S);
    }
  }

  // One fresh signaling connection at a time: a caller that finds one opening waits for that one.
  freshSignaling() {
    if (!this.refreshing) {
      this.refreshing = this.openFresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async openFresh() {
    const old = this.ws;
    this.ws = null; // the old socket's events no longer count
    try {
      if (old) old.close();
    } catch (e) {
      // already closed
    }
    const timeout = sleep(SIGNALING_OPEN_S).then(() => {
      throw new Failed("signaling reconnect timed out");
    });
    try {
      await Promise.race([this.openSignaling(), timeout]);
      this.note("signaling", "reconnected");
    } catch (e) {
      this.note("signaling", "reconnect-failed");
    }
  }

  async onAnswer(msg) {
    const pc = this.pc;
    if (pc.signalingState !== "have-local-offer" || msg.id !== this.offerId) {
      this.counts.stale_answers += 1;
      return;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    this.candidates.remote = sdpCandidates(msg.sdp);
    await this.flushRemote();
  }

  async onCandidate(msg) {
    const init = { candidate: msg.candidate || "", sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex };
    if (msg.usernameFragment) init.usernameFragment = msg.usernameFragment;
    if (!this.pc.remoteDescription) this.remoteQueue.push(init);
    else await this.addRemote(init);
  }

  async flushRemote() {
    const queued = this.remoteQueue;
    this.remoteQueue = [];
    for (const init of queued) await this.addRemote(init);
  }

  async addRemote(init) {
    try {
      await this.pc.addIceCandidate(init.candidate ? init : null);
      if (init.candidate && !this.candidates.remote.includes(init.candidate)) this.candidates.remote.push(init.candidate);
    } catch (e) {
      // A candidate of an offer we ignored or rolled back: it belongs to no current description.
      this.note("candidate-ignored", String(e.name));
    }
  }

  // --- the selected pair over time -------------------------------------------------------------------
  async readPair() {
    const stats = await this.pc.getStats();
    let transport = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) transport = s;
    });
    if (transport === null) return null;
    const pair = stats.get(transport.selectedCandidatePairId);
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    if (!local || !remote) return null;
    const where = (c) => (c.address ? `${c.address}:${c.port}` : null); // remote prflx: no address
    return {
      id: transport.selectedCandidatePairId,
      remote_port: remote.port,
      local_type: local.candidateType,
      remote_type: remote.candidateType,
      local: where(local),
      remote: where(remote),
      role: transport.iceRole || null,
      turn_transport: local.candidateType === "relay" ? local.relayProtocol || null : null,
    };
  }

  async notePair(t) {
    const read = await this.readPair().catch(() => null);
    if (read === null) return;
    const { id, remote_port: port, ...pair } = read;
    const last = this.pairs[this.pairs.length - 1];
    if (last !== undefined && (id === this.pairId || this.samePath(last, pair, port))) {
      // The same pair, relabelled (a peer-reflexive remote learned from a check, then signalled): keep
      // its time, take the better labels.
      Object.assign(last, pair);
    } else {
      this.pairs.push({ t, ...pair });
    }
    this.pairId = id;
    this.pairPort = port;
  }

  samePath(last, pair, port) {
    const remoteKnown = last.remote !== null && pair.remote !== null;
    return last.local === pair.local && port === this.pairPort && (!remoteKnown || last.remote === pair.remote);
  }

  watchPair() {
    if (this.pairTimer) return;
    const ice = this.pc.sctp && this.pc.sctp.transport && this.pc.sctp.transport.iceTransport;
    if (ice) ice.onselectedcandidatepairchange = () => this.notePair(this.now());
    this.pairTimer = setInterval(() => this.notePair(this.now()), POLL_S * 1000);
    this.notePair(this.now());
  }

  lastChange() {
    return this.pairs.length ? this.pairs[this.pairs.length - 1].t : null;
  }

  // --- echo ------------------------------------------------------------------------------------------
  attach(channel) {
    this.channel = channel;
    channel.onmessage = (ev) => {
      if (channel === this.channel) this.onEcho(channel, ev.data);
    };
    if (channel.readyState === "open") this.opened();
    else channel.onopen = () => channel === this.channel && this.opened();
  }

  attachHold(channel) {
    this.holdChannel = channel;
    channel.onmessage = (ev) => {
      if (channel !== this.holdChannel) return;
      const msg = JSON.parse(ev.data);
      if (msg.t === "hping") {
        if (channel.readyState === "open") channel.send(JSON.stringify({ t: "hpong", seq: msg.seq }));
      } else if (msg.t === "hpong") {
        const echo = this.holdEchoes[msg.seq];
        if (echo && echo.answered === null) echo.answered = this.now();
      }
    };
  }

  holdPing() {
    const seq = this.holdEchoes.length;
    const sent = this.now();
    this.holdEchoes.push({ seq, sent, answered: null });
    const channel = this.holdChannel;
    try {
      if (channel && channel.readyState === "open") channel.send(JSON.stringify({ t: "hping", seq, ts: sent }));
    } catch (e) {
      // a closing channel: the echo is lost
    }
  }

  async hold() {
    const cfg = this.cfg;
    const start = this.marks.first_echo;
    this.holdEnd = start + cfg.hold_s;
    const over = () => this.failedWith !== null;
    if (cfg.interval_s > 0) {
      for (let t = start; t <= this.holdEnd && !over(); t += cfg.interval_s) {
        await sleep(Math.max(0, t - this.now()));
        if (!over()) this.holdPing();
      }
    } else {
      while (this.now() < this.holdEnd && !over()) await sleep(Math.min(0.1, Math.max(this.holdEnd - this.now(), 0)));
      for (let i = 0; i < CHECK_COUNT && !over(); i++) {
        this.holdPing();
        await sleep(CHECK_SPACING_S);
      }
    }
    const grace = this.now() + ANSWER_GRACE_S;
    while (this.now() < grace && !over()) await sleep(0.05);
  }

  callRecord() {
    const r = (x) => round(x, 6);
    return {
      hold_s: this.cfg.hold_s,
      interval_s: this.cfg.interval_s,
      echoes: this.holdEchoes.map((e) => ({ seq: e.seq, sent: r(e.sent), answered: r(e.answered) })),
      sent: this.holdEchoes.length,
      answered: this.holdEchoes.filter((e) => e.answered !== null).length,
      closed: this.closed && { t: r(this.closed.t), reason: this.closed.reason },
      restart: this.cfg.restart ? "supported" : "unsupported by the remote",
      restarts: this.restarts.map((x) => ({ t: r(x.t), reason: x.reason, connected: r(x.connected) })),
    };
  }

  opened() {
    if ("channel_open" in this.marks) return;
    this.marks.channel_open = this.now();
    this.note("channel", "open");
    this.watchPair();
    this.pingTask = this.pings();
  }

  onEcho(channel, raw) {
    const msg = JSON.parse(raw);
    if (msg.t === "ping") {
      channel.send(JSON.stringify({ t: "pong", seq: msg.seq, ts: msg.ts }));
    } else if (msg.t === "pong") {
      const waiter = this.pongs.get(msg.seq);
      if (waiter) waiter(this.now());
    } else if (msg.t === "done") {
      this.remoteDone = true;
    }
  }

  ping(seq, timeoutS) {
    const channel = this.channel;
    return new Promise((resolve) => {
      const sent = this.now();
      const timer = setTimeout(() => resolve(null), timeoutS * 1000);
      this.pongs.set(seq, (got) => {
        clearTimeout(timer);
        resolve(got - sent);
      });
      this.pingsSent += 1;
      channel.send(JSON.stringify({ t: "ping", seq, ts: sent }));
    });
  }

  settled() {
    const first = this.marks.first_echo;
    if (first === undefined) return false;
    const since = Math.max(first, this.lastChange() || first);
    return this.now() - since >= this.cfg.settle_s;
  }

  async pings() {
    // echo_count pings as the aiortc peer sends them, then keep pinging until the pair is settled.
    const timeout = PONG_TIMEOUT_S;
    for (let seq = 0; this.channel && this.channel.readyState === "open"; seq++) {
      const counted = seq < this.cfg.echo_count;
      if (!counted && (this.settled() || this.settleCapReached())) break;
      const rtt = await this.ping(seq, timeout);
      if (rtt !== null) {
        this.rtts.push(rtt * 1000);
        if (!this.connected) {
          this.marks.first_echo = this.now();
          this.connected = true;
          this.connectedWaiters.forEach((f) => f());
        }
      }
      await sleep(counted ? this.cfg.echo_interval_s : KEEP_INTERVAL_S);
    }
    if (this.channel && this.channel.readyState === "open") this.channel.send(JSON.stringify({ t: "done" }));
  }

  settleCapReached() {
    const first = this.marks.first_echo;
    return first !== undefined && this.now() - first >= this.cfg.settle_s + SETTLE_EXTRA_S;
  }

  whenConnected() {
    return new Promise((resolve) => {
      if (this.connected) resolve();
      else this.connectedWaiters.push(resolve);
    });
  }

  async finish() {
    // Our pings (until settled) and the other side's `done`, within linger_s (which the session makes
    // long enough to settle: chromium.linger_s).
    const limit = this.now() + this.cfg.linger_s;
    while (this.now() < limit && this.failedWith === null) {
      const open = this.channel && this.channel.readyState === "open";
      if (!open || (this.pingsDone && this.remoteDone)) break;
      await sleep(0.05);
    }
  }

  // --- the run ---------------------------------------------------------------------------------------
  whereStuck() {
    const pc = this.pc;
    if (!this.present) return "signaling";
    if ("channel_open" in this.marks) return "data channel open but no echo";
    return `ice=${pc.iceConnectionState} signaling=${pc.signalingState} gathering=${pc.iceGatheringState}`;
  }

  async connect() {
    let timer;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(resolve, this.cfg.deadline_s * 1000);
    });
    try {
      const signedIn = this.openSignaling();
      const first = await Promise.race([signedIn.then(() => "in"), deadline.then(() => "late"), this.failed()]);
      if (first === "late") throw new Failed(`not connected within ${this.cfg.deadline_s} s (signaling)`);
      if (this.failedWith !== null) throw new Failed(this.failedWith);
      const got = await Promise.race([
        this.whenConnected().then(() => "up"),
        deadline.then(() => "late"),
        this.failed().then(() => "failed"),
      ]);
      if (got === "failed") throw new Failed(this.failedWith);
      if (got === "late") throw new Failed(`not connected within ${this.cfg.deadline_s} s (${this.whereStuck()})`);
    } finally {
      clearTimeout(timer);
    }
  }

  async run() {
    peers[this.cfg.user] = this;
    let state = "failed";
    let reason = null;
    let error = null;
    this.pc = this.newPc();
    try {
      await this.connect();
      state = "connected";
      this.pingTask.then(() => {
        this.pingsDone = true;
      });
      const held = this.cfg.hold_s > 0 ? this.hold() : null;
      await this.finish();
      if (held) await held;
    } catch (e) {
      reason = e instanceof Failed ? e.message : `error: ${e}`;
      error = e instanceof Failed ? null : String(e);
    }
    await this.shutdown(state !== "connected", reason);
    delete peers[this.cfg.user];
    return this.record(state, reason, error);
  }

  async shutdown(tellRemote, reason) {
    if (this.pc.connectionState !== "closed") await this.notePair(this.now());
    clearInterval(this.pairTimer);
    if (tellRemote) await this.send({ type: "bye", reason }).catch(() => {});
    this.pc.close();
    if (this.ws) this.ws.close();
  }

  record(state, reason, error) {
    const settled = this.pairs.length ? this.pairs[this.pairs.length - 1] : {};
    const offer = this.marks.offer;
    const since = (k) => (this.marks[k] !== undefined && offer !== undefined ? round(this.marks[k] - offer, 4) : null);
    const sorted = [...this.rtts].sort((x, y) => x - y);
    const mid = Math.floor(sorted.length / 2);
    const median = sorted.length ? (sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2) : null;
    const marks = { start: this.t0, ...this.marks };
    Object.keys(marks).forEach((k) => {
      marks[k] = round(marks[k], 6);
    });
    return {
      user: this.cfg.user,
      peer: "chromium",
      local_type: settled.local_type || null,
      remote_type: settled.remote_type || null,
      local: settled.local || null,
      remote: settled.remote || null,
      role: settled.role || null,
      polite: this.cfg.polite,
      turn_transport: settled.turn_transport || null,
      state,
      ice_urls: this.cfg.ice_servers.map((s) => s.urls),
      candidates: this.candidates,
      states: this.states,
      timings: {
        gathering_s: round(this.gathering_s, 4),
        ice_completed_s: since("ice_completed"),
        channel_open_s: since("channel_open"),
        first_echo_s: since("first_echo"),
        rtt_ms: round(median, 3),
        start_to_first_echo_s: this.marks.first_echo !== undefined ? round(this.marks.first_echo - this.t0, 4) : null,
      },
      marks,
      pairs: this.pairs.map((p) => ({ ...p, t: round(p.t, 6) })),
      stable: this.settled(),
      hide_host: this.cfg.hide_host,
      negotiation: { ...this.counts, offerer: !this.answered && this.marks.offer !== undefined },
      echo: { sent: this.pingsSent, received: this.rtts.length },
      media: { sent: this.mediaSent, received: this.tracksReceived },
      reason,
      error,
      ...(this.cfg.hold_s > 0 ? { call: this.callRecord() } : {}),
    };
  }
}

window.netsimPeer = (cfg) => new Peer(cfg).run();
window.netsimStop = (user, reason) => {
  const peer = peers[user];
  if (peer) peer.fail(reason);
  return Boolean(peer);
};
// When the peer connected (its first echo, controller clock), or null: the session times events from it.
window.netsimConnectedAt = (user) => {
  const peer = peers[user];
  return peer && peer.connected ? peer.marks.first_echo : null;
};
// The record as if the peer ended now (null before it connected): the controller keeps the last one, so a
// session whose browser dies later still knows that and when it connected.
window.netsimSnapshot = (user) => {
  const peer = peers[user];
  return peer && peer.connected ? peer.record("connected", null, null) : null;
};
window.netsimReady = true;
