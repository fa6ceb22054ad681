// The selected candidate pair over time (docs/peers.md, "The winner over time"): selectedcandidatepairchange
// plus a getStats poll. A pair that is only relabelled keeps its entry and time.
import { familyOf } from "./util.js";

const POLL_S = 0.1; // selected-pair poll, besides the selectedcandidatepairchange event

export class PairWatch {
  constructor(peer) {
    this.peer = peer;
    this.pairs = []; // {t, local_type, remote_type, local, remote, role, turn_transport, family}
    this.pairId = null; // getStats id of the latest pair
    this.pairPort = null; // its remote port (a prflx remote has no address in getStats)
    this.timer = null;
  }

  async read() {
    const stats = await this.peer.pc.getStats();
    let transport = null;
    stats.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) transport = s;
    });
    if (transport === null) return null;
    const pair = stats.get(transport.selectedCandidatePairId);
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    if (!local || !remote) return null;
    const where = (c) => {
      if (!c.address) return null; // remote prflx: no address
      return c.address.includes(":") ? `[${c.address}]:${c.port}` : `${c.address}:${c.port}`;
    };
    return {
      id: transport.selectedCandidatePairId,
      remote_port: remote.port,
      local_type: local.candidateType,
      remote_type: remote.candidateType,
      local: where(local),
      remote: where(remote),
      role: transport.iceRole || null,
      turn_transport: local.candidateType === "relay" ? local.relayProtocol || null : null,
      // ICE pairs candidates of one family: the local one's, else the remote's (an mDNS local name).
      family: familyOf(local.address) || familyOf(remote.address) || familyOf(local.relatedAddress) || this.gathered(),
    };
  }

  // The family of our gathered candidates, when the pair's own addresses are names or hidden.
  gathered() {
    for (const line of this.peer.candidates.local) {
      const family = familyOf(line.split(" ")[4]);
      if (family) return family;
    }
    return null;
  }

  async note(t) {
    const read = await this.read().catch(() => null);
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

  watch() {
    const peer = this.peer;
    if (this.timer) return;
    const sctp = peer.pc.sctp;
    const ice = sctp && sctp.transport && sctp.transport.iceTransport;
    if (ice) ice.onselectedcandidatepairchange = () => this.note(peer.now());
    this.timer = setInterval(() => this.note(peer.now()), POLL_S * 1000);
    this.note(peer.now());
  }

  stop() {
    clearInterval(this.timer);
  }

  lastChange() {
    return this.pairs.length ? this.pairs[this.pairs.length - 1].t : null;
  }

  last() {
    return this.pairs.length ? this.pairs[this.pairs.length - 1] : null;
  }
}
