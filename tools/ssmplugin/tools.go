//go:build tools

// Package ssmplugin pins the version of AWS's session-manager-plugin that
// latch's tests run against the simulator's Session Manager data channel
// (ec2sim/datachannel). It is a module of its own so that the plugin's
// dependencies stay out of latch's go.mod; internal/ssmplugintest builds the
// binary from here with
//
//	go build -o OUT github.com/aws/session-manager-plugin/src/sessionmanagerplugin-main
//
// The plugin's go.mod declares no requirements (upstream vendors), so the
// versions of its dependencies are the ones go.mod and go.sum here pin. To
// reproduce them: go mod tidy -e (a test-only dependency of twinj/uuid is not
// served by the proxy), then
// go get github.com/twinj/uuid@v0.0.0-20151029044442-89173bcdda19 (v1.0.0 has
// a different API and the plugin does not compile against it).
package ssmplugin

import _ "github.com/aws/session-manager-plugin/src/sessionmanagerplugin-main"
