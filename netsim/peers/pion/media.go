package main

// Synthetic media (PeerConfig.media): an audio and a video track, as the aiortc peer's synthetic tracks.
// Pion has no encoder, so the samples are fixed valid frames: Opus silence (20 ms) and a 32x32 grey VP8
// key frame (encoded once with libvpx) at 25 frames per second.

import (
	"time"

	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
)

var (
	opusSilence = []byte{0xf8, 0xff, 0xfe}
	vp8KeyFrame = []byte{
		0x30, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x20, 0x00, 0x20, 0x00, 0x00, 0x47, 0x08, 0x85,
		0x85, 0x88, 0x99, 0x84, 0x88, 0x02, 0x02, 0x00, 0x06, 0x19, 0xc1, 0x22, 0x00, 0x00,
	}
)

func (p *peer) addMedia() {
	if len(p.mediaSent) > 0 {
		return
	}
	tracks := []struct {
		mime, kind string
		rate       uint32
		channels   uint16
		sample     []byte
		every      time.Duration
	}{
		{webrtc.MimeTypeOpus, "audio", 48000, 2, opusSilence, 20 * time.Millisecond},
		{webrtc.MimeTypeVP8, "video", 90000, 0, vp8KeyFrame, 40 * time.Millisecond},
	}
	for _, t := range tracks {
		capability := webrtc.RTPCodecCapability{MimeType: t.mime, ClockRate: t.rate, Channels: t.channels}
		track, err := webrtc.NewTrackLocalStaticSample(capability, t.kind, "netsim")
		if err != nil {
			p.note("media", err.Error())
			continue
		}
		if _, err := p.pc.AddTrack(track); err != nil {
			p.note("media", err.Error())
			continue
		}
		p.mediaSent = append(p.mediaSent, t.kind)
		go feed(track, t.sample, t.every, p.loop.done)
	}
}

// feed writes one sample every period until the peer ends (a track not yet bound drops them).
func feed(track *webrtc.TrackLocalStaticSample, sample []byte, every time.Duration, done <-chan struct{}) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
			_ = track.WriteSample(media.Sample{Data: sample, Duration: every})
		}
	}
}
