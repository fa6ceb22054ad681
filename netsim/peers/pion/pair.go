package main

// The selected candidate pair over time: Pion's OnSelectedCandidatePairChange plus a 0.1 s poll of
// GetSelectedCandidatePair (the Chromium page does the same with its event and getStats). Every change
// goes into `pairs` with its monotonic time; a pair only relabelled (same addresses, e.g. a
// peer-reflexive remote later signalled) keeps its entry and time and takes the new labels.

import (
	"net"
	"strconv"

	"github.com/pion/webrtc/v3"
)

const pairPollS = 0.1

func (p *peer) watchPair() {
	if p.watching {
		return
	}
	p.watching = true
	p.notePair(now())
	var poll func()
	poll = func() {
		if p.ended {
			return
		}
		p.notePair(now())
		p.loop.after(pairPollS, poll)
	}
	p.loop.after(pairPollS, poll)
}

func (p *peer) readPair() map[string]any {
	if p.pc == nil {
		return nil
	}
	transport := p.pc.SCTP().Transport().ICETransport()
	pair, err := transport.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return nil
	}
	local, remote := pair.Local, pair.Remote
	var relay any
	if local.Typ == webrtc.ICECandidateTypeRelay {
		relay = p.relayProtocol(local.Address, int32(local.Port))
	}
	return map[string]any{
		"local_type":     local.Typ.String(),
		"remote_type":    remote.Typ.String(),
		"local":          address(local.Address, local.Port),
		"remote":         address(remote.Address, remote.Port),
		"role":           transport.Role().String(),
		"turn_transport": relay,
		"family":         family(local.Address),
	}
}

// relayProtocol: how our relay candidate reaches its TURN server (udp, tcp, tls), from Pion's stats.
func (p *peer) relayProtocol(ip string, port int32) any {
	for _, s := range p.pc.GetStats() {
		c, ok := s.(webrtc.ICECandidateStats)
		if ok && c.Type == webrtc.StatsTypeLocalCandidate && c.IP == ip && c.Port == port && c.RelayProtocol != "" {
			return c.RelayProtocol
		}
	}
	return nil
}

func (p *peer) notePair(t float64) {
	pair := p.readPair()
	if pair == nil {
		return
	}
	if n := len(p.pairs); n > 0 {
		last := p.pairs[n-1]
		if last["local"] == pair["local"] && last["remote"] == pair["remote"] {
			for k, v := range pair {
				last[k] = v
			}
			return
		}
	}
	pair["t"] = t
	p.pairs = append(p.pairs, pair)
}

// address as the other stacks write it: ip:port (IPv6 in brackets, so the port stays readable).
func address(ip string, port uint16) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.To4() == nil {
		return "[" + ip + "]:" + strconv.Itoa(int(port))
	}
	return ip + ":" + strconv.Itoa(int(port))
}

// family of an address: "ipv4", "ipv6", or nil for a name (an mDNS candidate).
func family(ip string) any {
	parsed := net.ParseIP(ip)
	switch {
	case parsed == nil:
		return nil
	case parsed.To4() != nil:
		return "ipv4"
	default:
		return "ipv6"
	}
}
