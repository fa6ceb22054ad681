package main

// The record: the PEER record of docs/DESIGN.md as the aiortc peer and the Chromium page write it, plus
// the protocol fields (`protocol`, `stack`, `version`, `settings`). Times in `marks` and `pairs` are
// absolute CLOCK_MONOTONIC seconds; the session makes `pairs` relative to the winning offer.

import (
	"math"
	"sort"
)

func round(x float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(x*scale) / scale
}

func roundAny(x any, digits int) any {
	if f, ok := x.(float64); ok {
		return round(f, digits)
	}
	return nil
}

func median(xs []float64) any {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return round(s[mid], 3)
	}
	return round((s[mid-1]+s[mid])/2, 3)
}

func (p *peer) timings() map[string]any {
	offer, haveOffer := p.marks["offer"]
	since := func(key string) any {
		t, ok := p.marks[key]
		if !ok || !haveOffer {
			return nil
		}
		return round(t-offer, 4)
	}
	var gathering, startToFirst any
	if p.gatheringS != nil {
		gathering = round(*p.gatheringS, 4)
	}
	if first, ok := p.marks["first_echo"]; ok {
		startToFirst = round(first-p.t0, 4)
	}
	return map[string]any{
		"gathering_s":           gathering,
		"ice_completed_s":       since("ice_completed"),
		"channel_open_s":        since("channel_open"),
		"first_echo_s":          since("first_echo"),
		"rtt_ms":                median(p.echo.rtts),
		"start_to_first_echo_s": startToFirst,
	}
}

// stable: the pair has not changed after the first echo, or its last change was settle_s before the end.
func (p *peer) stable(end float64) bool {
	first, ok := p.marks["first_echo"]
	if !ok || len(p.pairs) == 0 {
		return false
	}
	last, _ := p.pairs[len(p.pairs)-1]["t"].(float64)
	return last <= first || end-last >= p.cfg.SettleS
}

func (p *peer) record() map[string]any {
	settled := map[string]any{}
	if len(p.pairs) > 0 {
		settled = p.pairs[len(p.pairs)-1]
	}
	marks := map[string]any{"start": round(p.t0, 6)}
	for k, v := range p.marks {
		marks[k] = round(v, 6)
	}
	pairs := []map[string]any{}
	for _, pair := range p.pairs {
		entry := map[string]any{}
		for k, v := range pair {
			entry[k] = v
		}
		entry["t"] = roundAny(pair["t"], 6)
		pairs = append(pairs, entry)
	}
	urls := []any{}
	for _, s := range p.cfg.ICEServers {
		list, _ := s.urlList()
		if len(list) == 1 {
			urls = append(urls, list[0]) // as given: credentials stay out of records
		} else {
			urls = append(urls, list)
		}
	}
	offerer := !p.answered
	if _, ok := p.marks["offer"]; !ok {
		offerer = false
	}
	negotiation := map[string]any{"offerer": offerer}
	for k, v := range p.counts {
		negotiation[k] = v
	}
	rec := map[string]any{
		"protocol":       protocolVersion,
		"stack":          stackName,
		"version":        pionVersion,
		"settings":       settings(),
		"user":           p.cfg.User,
		"local_type":     settled["local_type"],
		"remote_type":    settled["remote_type"],
		"local":          settled["local"],
		"remote":         settled["remote"],
		"role":           settled["role"],
		"family":         settled["family"],
		"polite":         p.cfg.Polite,
		"turn_transport": settled["turn_transport"],
		"state":          p.state,
		"ice_urls":       urls,
		"candidates":     map[string]any{"local": p.candLocal, "remote": p.candRemote},
		"states":         p.states,
		"timings":        p.timings(),
		"marks":          marks,
		"pairs":          pairs,
		"stable":         p.stable(now()),
		"hide_host":      p.cfg.HideHost,
		"negotiation":    negotiation,
		"echo":           map[string]any{"sent": p.echo.pingsSent, "received": len(p.echo.rtts)},
		"media":          map[string]any{"sent": p.mediaSent, "received": p.tracksReceived},
		"reason":         p.reason,
		"error":          p.errText,
	}
	if p.cfg.HoldS > 0 {
		rec["call"] = p.callRecord()
	}
	return rec
}
