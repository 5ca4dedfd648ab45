package aws

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2instanceconnect"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/latchdev/latch"
)

// refusingAPI answers every call as IAM does when the server's policy
// does not cover the instance (one not tagged latch:ssh=true). The
// simulator does not evaluate IAM, so the answer is stubbed here.
type refusingAPI struct{ code string }

func (r refusingAPI) SendSSHPublicKey(context.Context, *ec2instanceconnect.SendSSHPublicKeyInput, ...func(*ec2instanceconnect.Options)) (*ec2instanceconnect.SendSSHPublicKeyOutput, error) {
	return nil, &smithy.GenericAPIError{Code: r.code, Message: "not authorized"}
}

func (r refusingAPI) GetConsoleOutput(context.Context, *ec2.GetConsoleOutputInput, ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	return nil, &smithy.GenericAPIError{Code: r.code, Message: "not authorized"}
}

// When IAM refuses, the error says which tag the instance lacks.
func TestIAMRefusalNamesTheSSHTag(t *testing.T) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPXjuIwJBWRx3hMWxqpcf1GSVc2fzhLPLb/GRk8IJ/yT"))
	if err != nil {
		t.Fatal(err)
	}
	err = (&InstanceConnect{eic: refusingAPI{"AccessDeniedException"}}).Push(t.Context(), "i-0a0b0c0d0e0f00003", "ec2-user", key)
	if latch.ErrorCode(err) != latch.EFORBIDDEN || !strings.Contains(err.Error(), latch.TagSSH+"=true") {
		t.Errorf("Instance Connect refused: %v; want EFORBIDDEN naming %s=true", err, latch.TagSSH)
	}
	_, err = (&ConsoleHostKeys{ec2: refusingAPI{"UnauthorizedOperation"}}).HostKeys(t.Context(), "i-0a0b0c0d0e0f00003")
	if latch.ErrorCode(err) != latch.EFORBIDDEN || !strings.Contains(err.Error(), latch.TagSSH+"=true") {
		t.Errorf("console output refused: %v; want EFORBIDDEN naming %s=true", err, latch.TagSSH)
	}
}
