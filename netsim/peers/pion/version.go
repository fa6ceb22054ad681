package main

// What the record says about the stack. The versions are those of the Debian packages the binary was
// built from, set at build time (-ldflags -X, netsim/peers/pion_build.py); the settings are Pion's defaults
// as this peer uses them (pion/ice v2 agent_config.go), checked against the sources by the tests.

import "runtime"

const (
	protocolVersion = 1
	stackName       = "pion"
)

var (
	pionVersion   = "unknown" // pion/webrtc
	iceVersion    = "unknown" // pion/ice
	debianVersion = "unknown" // the package golang-github-pion-webrtc.v3-dev
)

func settings() map[string]any {
	return map[string]any{
		"ice":                         iceVersion,
		"debian_package":              debianVersion,
		"go":                          runtime.Version(),
		"gomaxprocs":                  runtime.GOMAXPROCS(0),
		"host_acceptance_min_wait_s":  0.0,
		"srflx_acceptance_min_wait_s": 0.5,
		"prflx_acceptance_min_wait_s": 1.0,
		"relay_acceptance_min_wait_s": 2.0,
		"ice_disconnected_timeout_s":  5.0,
		"ice_failed_timeout_s":        25.0,
		"ice_keepalive_s":             2.0,
		"mdns":                        "disabled",
		"trickle":                     true,
		"rollback":                    false, // replaced connection (3.1.56 refuses a rollback)
		"ice_restart":                 true,
	}
}
