// netsim's Chromium peer: one session of the browser side of netsim.peers (docs/peers.md, "Peer protocol").
// The same protocols as the aiortc peer (netsim/peers/agent.py), and the same split: signaling,
// negotiation, restart, pair watching, echo, hold and the record each have a module; Peer joins them.
// Times are on the host's monotonic clock: performance.now() / 1000 + cfg.clock_offset.
import { Echo } from "./echo.js";
import { Hold } from "./hold.js";
import { HOLD_LABEL, Negotiation } from "./negotiation.js";
import { PairWatch } from "./pairs.js";
import { buildRecord } from "./record.js";
import { Restart } from "./restart.js";
import { Signaling } from "./signaling.js";
import { Failed, checkConfig, round } from "./util.js";

export class Peer {
  constructor(cfg) {
    this.cfg = checkConfig(cfg);
    this.t0 = cfg.t0;
    this.states = [];
    this.marks = {};
    this.candidates = { local: [], remote: [] };
    this.gatheringStarted = null;
    this.gathering_s = null;
    this.pc = null;
    this.tracksReceived = [];
    this.mediaSent = [];
    this.failedWith = null;
    this.failWaiters = [];
    this.connected = false;
    this.connectedWaiters = [];
    this.signaling = new Signaling(this);
    this.negotiation = new Negotiation(this);
    this.restart = new Restart(this);
    this.pairs = new PairWatch(this);
    this.echo = new Echo(this);
    this.hold = new Hold(this);
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

  markConnected() {
    if (this.connected) return;
    this.marks.first_echo = this.now();
    this.connected = true;
    this.connectedWaiters.forEach((f) => f());
  }

  whenConnected() {
    return new Promise((resolve) => {
      if (this.connected) resolve();
      else this.connectedWaiters.push(resolve);
    });
  }

  newPc() {
    const servers = this.cfg.ice_servers.map((s) => {
      const out = { urls: s.urls };
      if (s.username) out.username = s.username;
      if (s.credential) out.credential = s.credential;
      return out;
    });
    const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: this.cfg.policy });
    pc.onicecandidate = (ev) => this.negotiation.onLocalCandidate(ev.candidate);
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
        this.pairs.watch();
      }
      if (state === "failed" && !this.connected) this.fail("ICE failed");
    };
    pc.onconnectionstatechange = () => {
      this.note("pc", pc.connectionState);
      this.restart.onCallState(pc.connectionState);
    };
    pc.onsignalingstatechange = () => this.note("signaling", pc.signalingState);
    pc.ondatachannel = (ev) => (ev.channel.label === HOLD_LABEL ? this.hold : this.echo).attach(ev.channel);
    pc.ontrack = (ev) => this.tracksReceived.push(ev.track.kind);
    pc.onicecandidateerror = (ev) => this.note("candidate-error", `${ev.errorCode} ${ev.url}`);
    return pc;
  }

  // Synthetic tracks (no getUserMedia on a plain-http page): a canvas and an oscillator.
  addMedia() {
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

  whereStuck() {
    const pc = this.pc;
    if (!this.negotiation.present) return "signaling";
    if ("channel_open" in this.marks) return "data channel open but no echo";
    return `ice=${pc.iceConnectionState} signaling=${pc.signalingState} gathering=${pc.iceGatheringState}`;
  }

  // Signaling, negotiation, ICE, DTLS/SCTP up to the first echo, within deadline_s.
  async connect() {
    const { deadline_s: deadline } = this.cfg;
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(resolve, deadline * 1000);
    });
    try {
      const signedIn = this.signaling.open();
      const first = await Promise.race([signedIn.then(() => "in"), late.then(() => "late"), this.failed()]);
      if (first === "late") throw new Failed(`not connected within ${deadline} s (signaling)`);
      if (this.failedWith !== null) throw new Failed(this.failedWith);
      const got = await Promise.race([
        this.whenConnected().then(() => "up"),
        late.then(() => "late"),
        this.failed().then(() => "failed"),
      ]);
      if (got === "failed") throw new Failed(this.failedWith);
      if (got === "late") throw new Failed(`not connected within ${deadline} s (${this.whereStuck()})`);
    } finally {
      clearTimeout(timer);
    }
  }

  async run() {
    let state = "failed";
    let reason = null;
    let error = null;
    this.pc = this.newPc();
    try {
      await this.connect();
      state = "connected";
      const held = this.cfg.hold_s > 0 ? this.hold.run() : null;
      await this.echo.finish();
      if (held) await held;
    } catch (e) {
      reason = e instanceof Failed ? e.message : `error: ${e}`;
      error = e instanceof Failed ? null : String(e);
    }
    await this.shutdown(state !== "connected", reason);
    return buildRecord(this, state, reason, error);
  }

  async shutdown(tellRemote, reason) {
    if (this.pc.connectionState !== "closed") await this.pairs.note(this.now());
    this.pairs.stop();
    if (tellRemote) await this.signaling.send({ type: "bye", reason }).catch(() => {});
    this.pc.close();
    this.signaling.close();
  }
}
