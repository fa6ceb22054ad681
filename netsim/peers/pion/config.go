package main

// The peer's config (docs/peers.md, "The config"), read from the JSON file named by NETSIM_PEER_CONFIG.
// Every key must be present and `protocol` must be 1; a peer defaults nothing. Unknown keys are ignored
// (the protocol lets an external peer do so).

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// iceServer is one RTCIceServer; `urls` is a string or a list of strings, as in the browser API.
type iceServer struct {
	URLs       json.RawMessage `json:"urls"`
	Username   string          `json:"username"`
	Credential string          `json:"credential"`
}

// urlList is the server's URLs whichever form `urls` took.
func (s iceServer) urlList() ([]string, error) {
	var one string
	if err := json.Unmarshal(s.URLs, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(s.URLs, &many); err != nil {
		return nil, fmt.Errorf("ice_servers: urls must be a string or a list of strings, got %s", string(s.URLs))
	}
	return many, nil
}

type config struct {
	Protocol      int         `json:"protocol"`
	User          string      `json:"user"`
	Target        string      `json:"target"`
	Polite        bool        `json:"polite"`
	Offer         bool        `json:"offer"`
	OfferDelayS   float64     `json:"offer_delay_s"`
	SignalingURL  string      `json:"signaling_url"`
	Token         string      `json:"token"`
	ICEServers    []iceServer `json:"ice_servers"`
	CAFile        *string     `json:"ca_file"`
	Policy        string      `json:"policy"`
	DeadlineS     float64     `json:"deadline_s"`
	EchoCount     int         `json:"echo_count"`
	EchoIntervalS float64     `json:"echo_interval_s"`
	LingerS       float64     `json:"linger_s"`
	SettleS       float64     `json:"settle_s"`
	HoldS         float64     `json:"hold_s"`
	IntervalS     float64     `json:"interval_s"`
	HideHost      bool        `json:"hide_host"`
	Media         bool        `json:"media"`
	Restart       bool        `json:"restart"`
	ConnectedFile *string     `json:"connected_file"`
	T0            float64     `json:"t0"`
}

// configKeys: every key of protocol 1's config.
var configKeys = []string{
	"protocol", "user", "target", "polite", "offer", "offer_delay_s", "signaling_url", "token", "ice_servers",
	"ca_file", "policy", "deadline_s", "echo_count", "echo_interval_s", "linger_s", "settle_s", "hold_s",
	"interval_s", "hide_host", "media", "restart", "connected_file", "t0",
}

// loadConfig reads and checks the config file; the error names the field that is wrong.
func loadConfig(path string) (config, error) {
	var cfg config
	if path == "" {
		return cfg, fmt.Errorf("NETSIM_PEER_CONFIG is not set")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %v", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return cfg, fmt.Errorf("config: not a JSON object: %v", err)
	}
	// What can be read is read even when a key is missing: the failed record still names the user.
	err = json.Unmarshal(data, &cfg)
	missing := []string{}
	for _, key := range configKeys {
		if _, ok := keys[key]; !ok {
			missing = append(missing, key)
		}
	}
	switch {
	case len(missing) > 0:
		return cfg, fmt.Errorf("config: missing %s", strings.Join(missing, ", "))
	case err != nil:
		return cfg, fmt.Errorf("config: %v", err)
	case cfg.Protocol != protocolVersion:
		return cfg, fmt.Errorf("config: protocol %d, this peer speaks %d", cfg.Protocol, protocolVersion)
	}
	return cfg, cfg.check()
}

func (c config) check() error {
	switch {
	case c.User == "":
		return fmt.Errorf("config: user is empty")
	case c.Target == "":
		return fmt.Errorf("config: target is empty")
	case c.SignalingURL == "":
		return fmt.Errorf("config: signaling_url is empty")
	case c.Policy != "all" && c.Policy != "relay":
		return fmt.Errorf("config: policy must be all or relay, not %q", c.Policy)
	case c.DeadlineS <= 0:
		return fmt.Errorf("config: deadline_s must be > 0, not %g", c.DeadlineS)
	case c.EchoCount < 1:
		return fmt.Errorf("config: echo_count must be >= 1, not %d", c.EchoCount)
	case c.HoldS < 0 || c.IntervalS < 0 || c.LingerS < 0 || c.SettleS < 0 || c.OfferDelayS < 0:
		return fmt.Errorf("config: times must not be negative")
	}
	for _, s := range c.ICEServers {
		if _, err := s.urlList(); err != nil {
			return err
		}
	}
	return nil
}
