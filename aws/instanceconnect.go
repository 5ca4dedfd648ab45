package aws

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
)

// instanceConnectAPI is the part of the EC2 Instance Connect client latch calls.
type instanceConnectAPI interface {
	SendSSHPublicKey(context.Context, *ec2instanceconnect.SendSSHPublicKeyInput, ...func(*ec2instanceconnect.Options)) (*ec2instanceconnect.SendSSHPublicKeyOutput, error)
}

// InstanceConnect pushes short-lived SSH keys to instances with EC2
// Instance Connect: a key pushed stays usable for 60 seconds, long enough
// to connect once.
type InstanceConnect struct {
	eic instanceConnectAPI
}

// NewInstanceConnect returns a client for cfg.Region.
func NewInstanceConnect(cfg aws.Config) *InstanceConnect {
	return &InstanceConnect{eic: ec2instanceconnect.NewFromConfig(cfg)}
}

// PushSSHKey sends an authorized_keys-format key: latch.SSHKeyPusher.
func (c *InstanceConnect) PushSSHKey(ctx context.Context, instance latch.InstanceID, osUser string, publicKey []byte) error {
	key, _, _, _, err := ssh.ParseAuthorizedKey(publicKey)
	if err != nil {
		return latch.Invalidf("public_key", "is not an OpenSSH public key (want e.g. \"ssh-ed25519 AAAA…\")")
	}
	return c.Push(ctx, instance, osUser, key)
}

// Push sends key to instance for osUser. Returns ENOTFOUND for an unknown
// instance, ECONFLICT for one that is not running, and EFORBIDDEN, naming
// the latch:ssh tag, when IAM refuses.
func (c *InstanceConnect) Push(ctx context.Context, instance latch.InstanceID, osUser string, key ssh.PublicKey) error {
	_, err := c.eic.SendSSHPublicKey(ctx, &ec2instanceconnect.SendSSHPublicKeyInput{
		InstanceId: aws.String(string(instance)), InstanceOSUser: aws.String(osUser),
		SSHPublicKey: aws.String(string(ssh.MarshalAuthorizedKey(key))),
	})
	switch code := apiCode(err); code {
	case "":
		return translate("send SSH public key to "+string(instance), err)
	case "EC2InstanceNotFoundException":
		return latch.Errorf(latch.ENOTFOUND, "instance %s not found for EC2 Instance Connect", instance)
	case "EC2InstanceStateInvalidException", "EC2InstanceUnavailableException":
		return latch.Errorf(latch.ECONFLICT, "instance %s cannot take a key now (%s)", instance, code)
	case "InvalidArgsException":
		return latch.Errorf(latch.EINVALID, "EC2 Instance Connect refused the key or user %q", osUser)
	case "AccessDeniedException":
		return latch.Errorf(latch.EFORBIDDEN, "EC2 Instance Connect: not allowed to push a key to %s; latch's IAM policy allows it only on instances tagged %s=true", instance, latch.TagSSH)
	default:
		return translate("send SSH public key to "+string(instance), err)
	}
}
