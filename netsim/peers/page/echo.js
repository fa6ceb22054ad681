// The `echo` data channel (netsim/peers/echo.py has the same protocol): echo_count pings one at a time,
// pongs, `done`; the first pong is the connect. A stack that may renominate keeps pinging until its pair
// has settled (settle pings, docs/peers.md).

import { sleep } from "./util.js";

const KEEP_INTERVAL_S = 0.25; // pings both ways while the pair settles (the controlled side follows data)
export const SETTLE_EXTRA_S = 3.0; // how much longer than settle_s a peer waits for a stable pair
const PONG_TIMEOUT_S = 1.0; // a pong later than this counts as lost; the next ping goes out

export class Echo {
  constructor(peer) {
    this.peer = peer;
    this.channel = null;
    this.pongs = new Map(); // seq -> resolve(time)
    this.rtts = []; // ms
    this.pingsSent = 0;
    this.remoteDone = false;
    this.pingsDone = false;
    this.pingTask = null;
  }

  attach(channel) {
    this.channel = channel;
    channel.onmessage = (ev) => {
      if (channel === this.channel) this.onMessage(channel, ev.data);
    };
    if (channel.readyState === "open") this.opened();
    else channel.onopen = () => channel === this.channel && this.opened();
  }

  // The channel of a rolled-back offer.
  drop() {
    if (this.channel) this.channel.close();
    this.channel = null;
  }

  opened() {
    const peer = this.peer;
    if ("channel_open" in peer.marks) return;
    peer.marks.channel_open = peer.now();
    peer.note("channel", "open");
    peer.pairs.watch();
    this.pingTask = this.pings().then(() => {
      this.pingsDone = true;
    });
  }

  onMessage(channel, raw) {
    const msg = JSON.parse(raw);
    if (msg.t === "ping") {
      channel.send(JSON.stringify({ t: "pong", seq: msg.seq, ts: msg.ts }));
    } else if (msg.t === "pong") {
      const waiter = this.pongs.get(msg.seq);
      if (waiter) waiter(this.peer.now());
    } else if (msg.t === "done") {
      this.remoteDone = true;
    }
  }

  ping(seq, timeoutS) {
    const channel = this.channel;
    return new Promise((resolve) => {
      const sent = this.peer.now();
      const timer = setTimeout(() => resolve(null), timeoutS * 1000);
      this.pongs.set(seq, (got) => {
        clearTimeout(timer);
        resolve(got - sent);
      });
      this.pingsSent += 1;
      channel.send(JSON.stringify({ t: "ping", seq, ts: sent }));
    });
  }

  open() {
    return this.channel !== null && this.channel.readyState === "open";
  }

  // echo_count pings as the aiortc peer sends them, then keep pinging until the pair is settled.
  async pings() {
    const { cfg } = this.peer;
    for (let seq = 0; this.open(); seq++) {
      const counted = seq < cfg.echo_count;
      if (!counted && (this.settled() || this.settleCapReached())) break;
      const rtt = await this.ping(seq, PONG_TIMEOUT_S);
      if (rtt !== null) {
        this.rtts.push(rtt * 1000);
        this.peer.markConnected();
      }
      await sleep(counted ? cfg.echo_interval_s : KEEP_INTERVAL_S);
    }
    if (this.open()) this.channel.send(JSON.stringify({ t: "done" }));
  }

  settled() {
    const peer = this.peer;
    const first = peer.marks.first_echo;
    if (first === undefined) return false;
    const since = Math.max(first, peer.pairs.lastChange() || first);
    return peer.now() - since >= peer.cfg.settle_s;
  }

  settleCapReached() {
    const peer = this.peer;
    const first = peer.marks.first_echo;
    return first !== undefined && peer.now() - first >= peer.cfg.settle_s + SETTLE_EXTRA_S;
  }

  // Our pings (until settled) and the other side's `done`, within linger_s (which the session makes long
  // enough to settle).
  async finish() {
    const peer = this.peer;
    const limit = peer.now() + peer.cfg.linger_s;
    while (peer.now() < limit && peer.failedWith === null) {
      if (!this.open() || (this.pingsDone && this.remoteDone)) break;
      await sleep(0.05);
    }
  }
}
