package ec2sim

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

type getConsoleOutputResponse struct {
	meta
	InstanceID string `xml:"instanceId"`
	Timestamp  string `xml:"timestamp"`
	Output     string `xml:"output,omitempty"`
}

// getConsoleOutput answers what the instance printed at boot: with host
// keys, the block cloud-init prints them in. Latest (the live serial
// console on Nitro) is accepted and changes nothing, since the simulated
// console never changes after boot.
func (s *Server) getConsoleOutput(r *region, p params) (response, *apiError) {
	id := p.str("InstanceId")
	if id == "" {
		return nil, missing("InstanceId")
	}
	if _, err := p.optBoolean("Latest"); err != nil {
		return nil, err
	}
	if !validID(id, "i") {
		return nil, errf(CodeInvalidInstanceIDMalformed, "Invalid id: %q (expecting \"i-...\")", id)
	}
	in, ok := r.instances[id]
	if !ok {
		return nil, errf(CodeInvalidInstanceIDNotFound, "The instance ID '%s' does not exist", id)
	}
	// The timestamp is when the output was last updated: the end of boot.
	resp := &getConsoleOutputResponse{InstanceID: id, Timestamp: s.now().UTC().Format(time.RFC3339)}
	if text := consoleText(in); text != "" {
		resp.Output = base64.StdEncoding.EncodeToString([]byte(text))
		resp.Timestamp = in.launchTime.UTC().Add(bootTime).Format(time.RFC3339)
	}
	return resp, nil
}

// consoleText is the console of the instance's last boot, or "" when there
// is none to show: a pending instance has not booted yet, and one without
// host keys stands for an image whose console nobody reads. EC2 keeps the
// output of the last boot through stop and termination, so those states
// keep it too.
//
// Lines end in CRLF, as the serial console's tty (onlcr) writes them. The
// blocks are what cloud-init's write-ssh-key-fingerprints prints: the
// fingerprints through `logger -s -t ec2`, hence the syslog prefix, then
// the keys as they are in /etc/ssh/ssh_host_*_key.pub, whose comment is
// root@HOSTNAME.
func consoleText(in *instance) string {
	if in.state == "pending" || len(in.hostKeys) == 0 {
		return ""
	}
	boot := in.launchTime.UTC()
	host := "ip-" + strings.ReplaceAll(in.privateIP.String(), ".", "-")
	user := "root@" + host
	ready := boot.Add(bootTime)
	var b strings.Builder
	line := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString("\r\n")
	}
	line("[    0.000000] Linux version 6.8.0-ec2sim (ec2sim@localhost) #1 SMP")
	line("[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root=LABEL=cloudimg-rootfs ro console=tty1 console=ttyS0")
	line("[    4.102317] cloud-init[587]: Cloud-init v. 24.4 running 'init' at %s. Up 4.10 seconds.",
		boot.Add(4*time.Second).Format(cloudInitTime))
	syslog := "<14>" + ready.Format(time.Stamp) + " ec2: "
	line("%s", syslog)
	line("%s#############################################################", syslog)
	line("%s-----BEGIN SSH HOST KEY FINGERPRINTS-----", syslog)
	for _, k := range in.hostKeys {
		line("%s%d %s %s (%s)", syslog, k.bits, k.fingerprint(), user, hostKeyTypes[k.typ])
	}
	line("%s-----END SSH HOST KEY FINGERPRINTS-----", syslog)
	line("%s#############################################################", syslog)
	line("-----BEGIN SSH HOST KEY KEYS-----")
	for _, k := range in.hostKeys {
		line("%s", k.line(user))
	}
	line("-----END SSH HOST KEY KEYS-----")
	line("[    9.318530] cloud-init[812]: Cloud-init v. 24.4 finished at %s. Datasource DataSourceEc2Local.  Up 9.31 seconds",
		ready.Format(cloudInitTime))
	return b.String()
}

// bootTime is how long after launch the simulated boot finishes, and its
// console output is last written.
const bootTime = 9 * time.Second

// cloudInitTime is how cloud-init stamps its status lines (RFC 2822).
const cloudInitTime = "Mon, 02 Jan 2006 15:04:05 -0700"
