// Perfect negotiation (W3C), with the same roles, offer ids and counts as netsim/peers/negotiation.py;
// Chromium rolls back for real. Candidates trickle, each sent only after our description went out.
import { sdpCandidates, sleep } from "./util.js";

export const HOLD_LABEL = "hold";

export class Negotiation {
  constructor(peer) {
    this.peer = peer;
    this.counts = { offers_sent: 0, ignored_offers: 0, rollbacks: 0, stale_answers: 0 };
    this.makingOffer = false;
    this.present = false; // the target is on the signaling server
    this.answered = false; // this peer answered: it never offers in this session (restarts excepted)
    this.offerId = 0; // of our latest offer; an answer must echo it
    this.localQueue = []; // our candidates, held until our description went out
    this.descriptionSent = false;
    this.remoteQueue = []; // theirs, held until their description is applied
    this.answers = new Map(); // offer id -> our answer sdp (a re-sent restart offer gets the same answer)
  }

  onPresent() {
    const peer = this.peer;
    if (this.present) return;
    this.present = true;
    peer.note("signaling", "peer-present");
    if (peer.cfg.offer && !this.answered) {
      this.makingOffer = true; // synchronously, as in the aiortc peer: a later offer is a collision
      this.makeOffer().catch((e) => peer.fail(`offer failed: ${e}`));
    }
  }

  async makeOffer() {
    const peer = this.peer;
    const pc = peer.pc;
    try {
      peer.echo.attach(pc.createDataChannel("echo"));
      if (peer.cfg.hold_s > 0) {
        peer.hold.attach(pc.createDataChannel(HOLD_LABEL, { ordered: false, maxRetransmits: 0 }));
      }
      if (peer.cfg.media) peer.addMedia();
      const started = peer.now();
      peer.gatheringStarted = started;
      await pc.setLocalDescription();
      if (pc !== peer.pc || this.answered) return;
      peer.marks.offer = started;
      this.offerId += 1;
      if (peer.cfg.offer_delay_s > 0) {
        const paused = peer.now();
        await sleep(peer.cfg.offer_delay_s);
        peer.marks.offer += peer.now() - paused; // the deliberate delay is not negotiation time
      }
      if (pc.signalingState !== "have-local-offer" || this.answered) return;
      await peer.signaling.send({ type: "offer", sdp: pc.localDescription.sdp, id: this.offerId });
      this.counts.offers_sent += 1;
      this.flushLocal();
    } finally {
      this.makingOffer = false;
    }
  }

  async onOffer(msg) {
    const peer = this.peer;
    if (peer.connected) return this.onRestartOffer(msg);
    const collision = this.makingOffer || peer.pc.signalingState !== "stable";
    if (collision && !peer.cfg.polite) {
      this.counts.ignored_offers += 1;
      peer.note("signaling", "ignored-offer");
      return undefined;
    }
    if (collision) {
      // The polite peer's rollback: setRemoteDescription(offer) rolls our offer back. Our own echo
      // channel and queued candidates belonged to that offer.
      this.counts.rollbacks += 1;
      peer.note("signaling", "rolled-back");
      peer.echo.drop();
      this.localQueue = [];
      delete peer.marks.offer;
      peer.gathering_s = null;
    }
    this.answered = true;
    this.makingOffer = false;
    peer.marks.offer = peer.now();
    await peer.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    peer.candidates.remote = sdpCandidates(msg.sdp);
    await this.flushRemote();
    if (peer.cfg.media) peer.addMedia();
    peer.gatheringStarted = peer.now();
    peer.gathering_s = null;
    await peer.pc.setLocalDescription();
    await peer.signaling.send({ type: "answer", sdp: peer.pc.localDescription.sdp, id: msg.id });
    this.flushLocal();
    return undefined;
  }

  // An ICE restart offer of the other side (only the impolite side restarts: no collision). The same
  // offer sent again (its signaling reconnected) gets the same answer.
  async onRestartOffer(msg) {
    const peer = this.peer;
    if (this.answers.has(msg.id)) {
      // Sent again: its candidates may be ones whose trickle we never got.
      for (const line of sdpCandidates(msg.sdp)) await this.addRemote({ candidate: line, sdpMLineIndex: 0 });
      await peer.signaling.send({ type: "answer", sdp: this.answers.get(msg.id), id: msg.id });
      return;
    }
    peer.note("restart", "offer-received");
    this.descriptionSent = false;
    await peer.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    peer.candidates.remote.push(...sdpCandidates(msg.sdp));
    await this.flushRemote();
    await peer.pc.setLocalDescription();
    this.answers.set(msg.id, peer.pc.localDescription.sdp);
    await peer.signaling.send({ type: "answer", sdp: peer.pc.localDescription.sdp, id: msg.id });
    this.flushLocal();
  }

  async onAnswer(msg) {
    const peer = this.peer;
    const pc = peer.pc;
    if (pc.signalingState !== "have-local-offer" || msg.id !== this.offerId) {
      this.counts.stale_answers += 1;
      return;
    }
    await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
    peer.candidates.remote = sdpCandidates(msg.sdp);
    await this.flushRemote();
  }

  async onCandidate(msg) {
    const init = { candidate: msg.candidate || "", sdpMid: msg.sdpMid, sdpMLineIndex: msg.sdpMLineIndex };
    if (msg.usernameFragment) init.usernameFragment = msg.usernameFragment;
    if (!this.peer.pc.remoteDescription) this.remoteQueue.push(init);
    else await this.addRemote(init);
  }

  async flushRemote() {
    const queued = this.remoteQueue;
    this.remoteQueue = [];
    for (const init of queued) await this.addRemote(init);
  }

  async addRemote(init) {
    const peer = this.peer;
    try {
      await peer.pc.addIceCandidate(init.candidate ? init : null);
      const remote = peer.candidates.remote;
      if (init.candidate && !remote.includes(init.candidate)) remote.push(init.candidate);
    } catch (e) {
      // A candidate of an offer we ignored or rolled back: it belongs to no current description.
      peer.note("candidate-ignored", String(e.name));
    }
  }

  onLocalCandidate(candidate) {
    if (candidate === null || !candidate.candidate) return; // end of gathering: the state note says it
    const init = candidate.toJSON();
    if (this.descriptionSent) this.sendCandidate(init);
    else this.localQueue.push(init);
  }

  sendCandidate(init) {
    this.peer.candidates.local.push(init.candidate);
    this.peer.signaling.send({ type: "candidate", ...init }).catch(() => {});
  }

  flushLocal() {
    this.descriptionSent = true;
    const queued = this.localQueue;
    this.localQueue = [];
    queued.forEach((init) => this.sendCandidate(init));
  }

  // The record's `negotiation`.
  summary() {
    return { ...this.counts, offerer: !this.answered && this.peer.marks.offer !== undefined };
  }
}
