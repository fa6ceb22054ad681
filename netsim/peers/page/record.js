// The session's raw record (docs/peers.md, "The record"); netsim checks it where it enters the session.
// The page cannot read its browser's full version: the controller fills `version` and `settings` in.
import { PROTOCOL, median, round } from "./util.js";

const PAIR_KEYS = ["local_type", "remote_type", "local", "remote", "role", "turn_transport", "family"];

export function buildRecord(peer, state, reason, error) {
  const { cfg, marks } = peer;
  const settled = peer.pairs.last() || {};
  const offer = marks.offer;
  const since = (k) => (marks[k] !== undefined && offer !== undefined ? round(marks[k] - offer, 4) : null);
  const absolute = { start: peer.t0, ...marks };
  Object.keys(absolute).forEach((k) => {
    absolute[k] = round(absolute[k], 6);
  });
  const pair = {};
  PAIR_KEYS.forEach((k) => {
    pair[k] = settled[k] === undefined ? null : settled[k];
  });
  return {
    protocol: PROTOCOL,
    stack: "chromium",
    version: null,
    settings: {},
    user: cfg.user,
    ...pair,
    polite: cfg.polite,
    state,
    ice_urls: cfg.ice_servers.map((s) => s.urls),
    candidates: peer.candidates,
    states: peer.states,
    timings: {
      gathering_s: round(peer.gathering_s, 4),
      ice_completed_s: since("ice_completed"),
      channel_open_s: since("channel_open"),
      first_echo_s: since("first_echo"),
      rtt_ms: round(median(peer.echo.rtts), 3),
      start_to_first_echo_s: marks.first_echo !== undefined ? round(marks.first_echo - peer.t0, 4) : null,
    },
    marks: absolute,
    pairs: peer.pairs.pairs.map((p) => ({ ...p, t: round(p.t, 6) })),
    stable: peer.echo.settled(),
    hide_host: cfg.hide_host,
    negotiation: peer.negotiation.summary(),
    echo: { sent: peer.echo.pingsSent, received: peer.echo.rtts.length },
    media: { sent: peer.mediaSent, received: peer.tracksReceived },
    reason,
    error,
    ...(cfg.hold_s > 0 ? { call: peer.hold.record(peer.restart) } : {}),
  };
}
