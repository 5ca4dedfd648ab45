package aws

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
)

// consoleAPI is the part of the EC2 client ConsoleHostKeys calls.
type consoleAPI interface {
	GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
}

// ConsoleHostKeys reads instances' SSH host keys from their console
// output, where cloud-init prints them at first boot. EC2 writes that
// output from the hypervisor, so it is a channel to the instance that no
// one on the network path to its SSH port can forge.
type ConsoleHostKeys struct {
	ec2 consoleAPI
}

// NewConsoleHostKeys returns a reader for cfg.Region.
func NewConsoleHostKeys(cfg aws.Config) *ConsoleHostKeys {
	return &ConsoleHostKeys{ec2: ec2.NewFromConfig(cfg)}
}

// HostKeys implements latch.HostKeySource. An instance whose console shows
// no keys (an image without cloud-init, or output not yet captured) has
// none.
func (c *ConsoleHostKeys) HostKeys(ctx context.Context, instance latch.InstanceID) ([]string, error) {
	out, err := c.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(string(instance))})
	if err != nil {
		err = translateLookup("read console output of "+string(instance), err)
		if latch.ErrorCode(err) == latch.EFORBIDDEN {
			err = fmt.Errorf("%w (latch's IAM policy reads the console only of instances tagged %s=true)", err, latch.TagSSH)
		}
		return nil, err
	}
	text, err := base64.StdEncoding.DecodeString(aws.ToString(out.Output))
	if err != nil {
		return nil, latch.Errorf(latch.EUNAVAILABLE, "console output of %s is not base64: %v", instance, err)
	}
	return ParseConsoleHostKeys(string(text)), nil
}

const (
	hostKeysBegin = "-----BEGIN SSH HOST KEY KEYS-----"
	hostKeysEnd   = "-----END SSH HOST KEY KEYS-----"
)

// ParseConsoleHostKeys returns the keys in the first complete block of
// host keys cloud-init printed, each as "TYPE BASE64", without the
// comment. cloud-init prints the block once, at the instance's first
// boot, before anyone can log in; a later block can only have been
// printed by something on the instance (root can write to the console),
// so it never replaces the first, even when the first holds no key.
// Lines that are not public keys, and everything outside the block, are
// ignored: a console also carries whatever else the instance printed.
func ParseConsoleHostKeys(console string) []string {
	var block []string
	in := false
	for line := range strings.Lines(console) {
		line = strings.TrimSpace(line)
		// Console lines may carry a kernel timestamp or a prefix such as
		// "ec2: "; the markers are matched anywhere in the line.
		switch {
		case strings.Contains(line, hostKeysBegin):
			in, block = true, nil
		case strings.Contains(line, hostKeysEnd):
			if in {
				return block
			}
		case in:
			if k := hostKeyLine(line); k != "" {
				block = append(block, k)
			}
		}
	}
	return nil
}

// hostKeyLine returns line's public key as "TYPE BASE64", or "" if line
// holds none (a certificate is not a host key). The line may start with a
// prefix such as "ec2: ".
func hostKeyLine(line string) string {
	f := strings.Fields(line)
	for i := range f {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.Join(f[i:], " ")))
		if err != nil {
			continue
		}
		if _, cert := key.(*ssh.Certificate); cert {
			return ""
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	}
	return ""
}
