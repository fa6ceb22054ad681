// The page's entry points, for any browser: the adapter hands each session's config to the running page
// (several sessions may run at once, e.g. the session's relay-less run) and gets its record back.
import { Peer } from "./peer.js";
import { buildRecord } from "./record.js";

const peers = new Map(); // user -> Peer

// One session; resolves to its raw record. A config that misses a key rejects with the key's name.
window.netsimPeer = async (cfg) => {
  const peer = new Peer(cfg);
  peers.set(cfg.user, peer);
  try {
    return await peer.run();
  } finally {
    peers.delete(cfg.user);
  }
};

// Ends a running session early (with `reason`); whether there was one.
window.netsimStop = (user, reason) => {
  const peer = peers.get(user);
  if (peer) peer.fail(reason);
  return Boolean(peer);
};

// When the session connected (its first echo, host clock), or null: netsim times events from it.
window.netsimConnectedAt = (user) => {
  const peer = peers.get(user);
  return peer && peer.connected ? peer.marks.first_echo : null;
};

// The record as if the session ended now (null before it connected): the controller keeps the last one, so
// a session whose browser dies later still knows that and when it connected.
window.netsimSnapshot = (user) => {
  const peer = peers.get(user);
  return peer && peer.connected ? buildRecord(peer, "connected", null, null) : null;
};

window.netsimReady = true;
