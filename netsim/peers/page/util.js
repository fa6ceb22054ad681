// Small pieces every module of the page peer shares, and the config check (docs/peers.md, "Peer protocol").

export const PROTOCOL = 1;

// Every key of a session's config (netsim.peers.protocol.PeerConfig) plus the page's clock offset: the page
// defaults nothing.
export const CONFIG_KEYS = [
  "protocol", "user", "target", "polite", "offer", "offer_delay_s", "signaling_url", "token", "ice_servers",
  "ca_file", "policy", "deadline_s", "echo_count", "echo_interval_s", "linger_s", "settle_s", "hold_s",
  "interval_s", "hide_host", "media", "restart", "connected_file", "t0", "clock_offset",
];

export class Failed extends Error {}

// The config as given, or an Error naming the first missing key (or another protocol version).
export function checkConfig(cfg) {
  if (cfg === null || typeof cfg !== "object") throw new Error("config: expected an object");
  const missing = CONFIG_KEYS.filter((key) => !(key in cfg));
  if (missing.length) throw new Error(`config: missing ${missing.join(", ")}`);
  if (cfg.protocol !== PROTOCOL) throw new Error(`config: protocol ${cfg.protocol}, this page speaks ${PROTOCOL}`);
  return cfg;
}

export const sleep = (s) => new Promise((resolve) => setTimeout(resolve, s * 1000));

export const round = (x, n) => (x === null || x === undefined ? null : Number(x.toFixed(n)));

export const sdpCandidates = (sdp) =>
  sdp
    .split(/\r?\n/)
    .filter((l) => l.startsWith("a=candidate:"))
    .map((l) => l.slice(2));

// "ipv4" or "ipv6" of an address (bare, or address:port, or [v6]:port); null for a name (mDNS) or nothing.
export function familyOf(address) {
  if (!address) return null;
  let host = address;
  if (host.startsWith("[")) host = host.slice(1, host.indexOf("]"));
  else if (host.split(":").length === 2) host = host.split(":")[0];
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return "ipv4";
  if (host.includes(":") && /^[0-9a-fA-F:.]+$/.test(host)) return "ipv6";
  return null;
}

// The median of numbers, or null.
export function median(values) {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  if (!sorted.length) return null;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
