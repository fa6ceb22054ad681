// A held call's connection states and the ICE restart (docs/peers.md, "ICE restart"): only the impolite
// side restarts, so restarts never collide; the restart offer always goes over a fresh WebSocket.
import { sleep } from "./util.js";

// At once on `failed`, or after this long in `disconnected`. Chromium says disconnected ~5.3 s after the
// path broke and failed ~15.4 s after; outages of 6-12 s come back by themselves, and a restart does not
// hurt those (0.4 s, the data channel stays open), while a path whose NAT port changed never comes back
// without one: 2 s more of disconnected is the point where waiting longer only prolongs the outage.
const RESTART_AFTER_DISCONNECTED_S = 2.0;
const RESTART_RETRY_S = 2.0; // no answer to a restart offer (signaling reconnecting): send it again

export class Restart {
  constructor(peer) {
    this.peer = peer;
    this.restarts = []; // {t, reason, connected}
    this.disconnectTimer = null;
    this.closed = null; // {t, reason}: the connection failed or closed while held
  }

  onCallState(state) {
    const peer = this.peer;
    const { cfg } = peer;
    if (peer.hold.end === null || peer.now() >= peer.hold.end) return;
    const last = this.restarts[this.restarts.length - 1];
    if (state === "connected" && last && last.connected === null) {
      last.connected = peer.now();
      peer.note("restart", "connected");
    }
    clearTimeout(this.disconnectTimer);
    // Whichever side lost its path may have lost its signaling connection with it, silently (a move): both
    // sides open a fresh one, so the polite side can still receive the restart offer.
    if ((state === "disconnected" || state === "failed") && cfg.restart) peer.signaling.fresh().catch(() => {});
    const canRestart = cfg.restart && !cfg.polite;
    if (state === "disconnected" && canRestart) {
      this.disconnectTimer = setTimeout(() => {
        if (peer.pc.connectionState === "disconnected") this.restartIce("disconnected");
      }, RESTART_AFTER_DISCONNECTED_S * 1000);
    } else if (state === "failed" && canRestart) {
      this.restartIce("failed");
    } else if ((state === "failed" && !cfg.restart) || state === "closed") {
      if (this.closed === null) this.closed = { t: peer.now(), reason: `connection ${state}` };
    }
  }

  async restartIce(reason) {
    const peer = this.peer;
    const negotiation = peer.negotiation;
    if (peer.pc.signalingState !== "stable" || !peer.hold.holding()) return;
    this.restarts.push({ t: peer.now(), reason, connected: null });
    peer.note("restart", reason);
    peer.pc.restartIce();
    negotiation.descriptionSent = false;
    await peer.pc.setLocalDescription();
    negotiation.offerId += 1;
    const id = negotiation.offerId;
    // The path that broke was the signaling connection's path too: after a move its TCP connection's source
    // address is gone, so it takes our frames and nothing comes back, not even a reset or a close event.
    // Every try goes over a fresh WebSocket (our candidates queue meanwhile), and unanswered it is sent again.
    const pending = () =>
      peer.pc.signalingState === "have-local-offer" && negotiation.offerId === id && peer.hold.holding();
    while (pending()) {
      await peer.signaling.fresh();
      // The current description: on a second try it carries every candidate gathered so far, since those
      // trickled after the first one may have gone into a dead connection.
      await peer.signaling.send({ type: "offer", sdp: peer.pc.localDescription.sdp, id }).catch(() => {});
      negotiation.counts.offers_sent += 1;
      negotiation.flushLocal();
      await sleep(RESTART_RETRY_S);
    }
  }
}
