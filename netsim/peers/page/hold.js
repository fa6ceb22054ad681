// A held call's echoes on the unordered `hold` channel without retransmissions (netsim/peers/hold.py has
// the same protocol): a lost echo is lost.
import { round, sleep } from "./util.js";

const CHECK_COUNT = 3; // interval_s = 0: echoes at the end of the hold only ...
const CHECK_SPACING_S = 0.25;
export const ANSWER_GRACE_S = 1.0; // after our last echo: wait for answers, keep answering the other side

export class Hold {
  constructor(peer) {
    this.peer = peer;
    this.channel = null;
    this.echoes = []; // {seq, sent, answered}
    this.end = null; // when the hold ends (host clock)
  }

  attach(channel) {
    this.channel = channel;
    channel.onmessage = (ev) => {
      if (channel !== this.channel) return;
      const msg = JSON.parse(ev.data);
      if (msg.t === "hping") {
        if (channel.readyState === "open") channel.send(JSON.stringify({ t: "hpong", seq: msg.seq }));
      } else if (msg.t === "hpong") {
        const echo = this.echoes[msg.seq];
        if (echo && echo.answered === null) echo.answered = this.peer.now();
      }
    };
  }

  holding() {
    const peer = this.peer;
    return this.end !== null && peer.now() < this.end + ANSWER_GRACE_S && peer.failedWith === null;
  }

  ping() {
    const seq = this.echoes.length;
    const sent = this.peer.now();
    this.echoes.push({ seq, sent, answered: null });
    const channel = this.channel;
    try {
      if (channel && channel.readyState === "open") channel.send(JSON.stringify({ t: "hping", seq, ts: sent }));
    } catch (e) {
      // a closing channel: the echo is lost
    }
  }

  async run() {
    const peer = this.peer;
    const { cfg } = peer;
    const start = peer.marks.first_echo;
    this.end = start + cfg.hold_s;
    const over = () => peer.failedWith !== null;
    if (cfg.interval_s > 0) {
      // Counted, not summed: start + 0.1 + 0.1 ... drifts past the end and would drop the last echo.
      const count = Math.floor(cfg.hold_s / cfg.interval_s + 1e-9) + 1;
      for (let i = 0; i < count && !over(); i++) {
        await sleep(Math.max(0, start + i * cfg.interval_s - peer.now()));
        if (!over()) this.ping();
      }
    } else {
      while (peer.now() < this.end && !over()) await sleep(Math.min(0.1, Math.max(this.end - peer.now(), 0)));
      for (let i = 0; i < CHECK_COUNT && !over(); i++) {
        this.ping();
        await sleep(CHECK_SPACING_S);
      }
    }
    const grace = peer.now() + ANSWER_GRACE_S;
    while (peer.now() < grace && !over()) await sleep(0.05);
  }

  // The record's `call`.
  record(restart) {
    const r = (x) => round(x, 6);
    const { cfg } = this.peer;
    return {
      hold_s: cfg.hold_s,
      interval_s: cfg.interval_s,
      echoes: this.echoes.map((e) => ({ seq: e.seq, sent: r(e.sent), answered: r(e.answered) })),
      sent: this.echoes.length,
      answered: this.echoes.filter((e) => e.answered !== null).length,
      closed: restart.closed && { t: r(restart.closed.t), reason: restart.closed.reason },
      restart: cfg.restart ? "supported" : "unsupported by the remote",
      restarts: restart.restarts.map((x) => ({ t: r(x.t), reason: x.reason, connected: r(x.connected) })),
    };
  }
}
