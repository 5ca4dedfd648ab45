package sshclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/latchdev/latch"
)

// Config is what `ssh -G` says the user's configuration makes of a
// destination: the keys are ssh_config keywords in lower case.
type Config map[string]string

// ReadConfig asks the ssh client at sshPath how it would connect to dest
// with userArgs, so latch follows the user's ssh config (User, Port,
// HostName, known hosts).
func ReadConfig(ctx context.Context, sshPath, dest string, userArgs []string) (Config, error) {
	out, err := exec.CommandContext(ctx, sshPath, append([]string{"-G", dest}, userArgs...)...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := errors.AsType[*exec.ExitError](err); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return nil, fmt.Errorf("%s -G %s: %s", sshPath, dest, msg)
	}
	cfg := Config{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if _, seen := cfg[k]; !seen { // repeated keys (identityfile, …) are not needed
			cfg[k] = v
		}
	}
	return cfg, nil
}

// Command is one ssh command line: where, as whom, with which key, and
// which host keys to trust.
type Command struct {
	SSH   string // the OpenSSH client to run
	Dest  string // as the user typed it, without USER@, so their ssh config's Host blocks match
	Login string
	Port  int
	Key   *Key
	// Certificate offers the key's certificate (Key.CertPath).
	Certificate bool
	// KnownHosts is latch's known_hosts file: new host keys go there, and
	// the user's own files (Config's userknownhostsfile) are still read.
	KnownHosts string
	Config     Config
	// Address is where to connect; "" leaves HostName to the user's
	// config. With it, host keys are remembered under Instance, as EC2
	// reuses addresses.
	Address  string
	Instance latch.InstanceID
	// Strict refuses any host key but those known: set it when
	// KnownHosts holds the instance's keys as EC2 shows them (PinHostKeys).
	Strict bool
	// ProxyCommand, if set, is how ssh reaches the instance: Session
	// Manager's plugin, with no port open to the network.
	ProxyCommand string
	// Args are the user's arguments: options, then optionally a command.
	Args []string
}

// Argv is the command line. latch's options come first, so they win over
// the user's config; the user's arguments follow the destination, which
// OpenSSH accepts, and may end in a command.
func (c Command) Argv() []string {
	argv := []string{c.SSH,
		"-i", c.Key.Path, "-o", "IdentitiesOnly=yes",
		"-l", c.Login, "-p", strconv.Itoa(c.Port),
		// New host keys go to latch's file; the user's files are still read.
		"-o", "UserKnownHostsFile=" + strings.TrimSpace(c.KnownHosts+" "+c.Config["userknownhostsfile"]),
	}
	if c.Certificate {
		argv = append(argv, "-o", "CertificateFile="+c.Key.CertPath())
	}
	if c.Address != "" {
		// Host keys are remembered by instance: EC2 reuses addresses.
		argv = append(argv, "-o", "HostName="+c.Address, "-o", "HostKeyAlias="+string(c.Instance))
	}
	if c.ProxyCommand != "" {
		argv = append(argv, "-o", "ProxyCommand="+c.ProxyCommand)
	}
	if c.Strict {
		// The keys came from EC2, not the network: any other key is an impostor.
		argv = append(argv, "-o", "StrictHostKeyChecking=yes")
	}
	argv = append(argv, c.Dest)
	return append(argv, c.Args...)
}
