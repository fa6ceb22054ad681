// The lab's signaling server (docs/signaling.md): one WebSocket, frames to and from the target only.
// Mirrors netsim/peers/lab_signaling.py; a held call reopens it when it dies (an ICE restart needs it).
import { Failed, sleep } from "./util.js";

const SIGNALING_OPEN_S = 4.0; // a fresh WebSocket for a restart offer: in the lab ~10 ms, a loaded machine more

export class Signaling {
  constructor(peer) {
    this.peer = peer;
    this.ws = null;
    this.reconnecting = null; // a reconnect loop running (held call)
    this.refreshing = null; // a fresh connection being opened (fresh())
  }

  async send(payload) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new Failed("signaling closed");
    this.ws.send(JSON.stringify({ ...payload, target: this.peer.cfg.target }));
  }

  // Resolves at the welcome; the target's presence there (or later) starts the negotiation.
  open() {
    const peer = this.peer;
    const { signaling_url: url, user, token } = peer.cfg;
    const endpoint = `${url.replace(/\/$/, "")}/ws/${encodeURIComponent(user)}?token=${encodeURIComponent(token)}`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(endpoint);
      this.ws = ws;
      ws.onmessage = (ev) => {
        if (ws !== this.ws) return;
        const msg = JSON.parse(ev.data);
        if (msg.type === "welcome") {
          if (!("signed_in" in peer.marks)) peer.marks.signed_in = peer.now();
          peer.note("signaling", "connected");
          resolve();
          const status = (msg.presence || {})[peer.cfg.target];
          if (status === "online" || status === "busy") peer.negotiation.onPresent();
          return;
        }
        this.dispatch(msg).catch((e) => peer.fail(`error: ${e}`));
      };
      ws.onerror = () => reject(new Failed("signaling connection failed"));
      ws.onclose = (ev) => {
        reject(new Failed(`signaling closed (${ev.code})`));
        if (ws !== this.ws) return;
        peer.note("signaling", `closed ${ev.code}`);
        if (!peer.connected) peer.fail(`signaling closed (${ev.code})`);
        else if (peer.hold.holding()) this.reconnect();
      };
    });
  }

  async dispatch(msg) {
    const peer = this.peer;
    const negotiation = peer.negotiation;
    if (msg.type === "presence") {
      if (msg.user !== peer.cfg.target) return;
      peer.note("remote", String(msg.status));
      if (msg.status === "online" || msg.status === "busy") negotiation.onPresent();
    } else if (msg.type === "error") {
      peer.note("signaling-error", `${msg.code}: ${msg.message}`);
    } else if (msg.sender !== peer.cfg.target) {
      return;
    } else if (msg.type === "offer") {
      await negotiation.onOffer(msg);
    } else if (msg.type === "answer") {
      await negotiation.onAnswer(msg);
    } else if (msg.type === "candidate") {
      await negotiation.onCandidate(msg);
    } else if (msg.type === "bye") {
      peer.fail(`remote gave up: ${msg.reason}`);
    }
  }

  // A held call keeps signaling: a NAT flush or a move breaks the WebSocket's TCP connection, and an ICE
  // restart needs it. The server replaces our old connection with the new one.
  reconnect() {
    if (this.reconnecting) return;
    this.reconnecting = (async () => {
      while (this.peer.hold.holding()) {
        try {
          await this.open();
          this.peer.note("signaling", "reconnected");
          break;
        } catch (e) {
          await sleep(0.5);
        }
      }
      this.reconnecting = null;
    })();
  }

  // One fresh connection at a time: a caller that finds one opening waits for that one.
  fresh() {
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
      await Promise.race([this.open(), timeout]);
      this.peer.note("signaling", "reconnected");
    } catch (e) {
      this.peer.note("signaling", "reconnect-failed");
    }
  }

  close() {
    if (this.ws) this.ws.close();
  }
}
