package awsauth

import (
	"slices"
	"strings"

	"github.com/latchdev/latch"
)

// NormalizeARN returns the ARN latch names an IAM principal by, so that
// policies can name it however STS spells it:
//
//   - arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION stays as it is; a role
//     path, if any, is dropped.
//   - arn:aws:iam::ACCOUNT:user/PATH/NAME becomes
//     arn:aws:iam::ACCOUNT:user/NAME, and roles likewise.
//   - Any other principal (root, federated-user/NAME) stays as it is.
//
// It returns EINVALID for a string that is not a principal ARN.
func NormalizeARN(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[4] == "" || parts[5] == "" {
		return "", latch.Errorf(latch.EINVALID, "%q is not an AWS principal ARN (arn:PARTITION:SERVICE::ACCOUNT:RESOURCE)", arn)
	}
	service, resource := parts[2], parts[5]
	kind, rest, _ := strings.Cut(resource, "/")
	names := strings.Split(rest, "/")
	keep := 0 // trailing names that identify the principal
	switch {
	case service == "sts" && kind == "assumed-role":
		keep = 2 // role and session
	case service == "iam" && (kind == "user" || kind == "role"):
		keep = 1
	}
	if keep > 0 {
		if len(names) < keep || slices.Contains(names, "") {
			return "", latch.Errorf(latch.EINVALID, "%q is not a well-formed %s ARN", arn, kind)
		}
		parts[5] = kind + "/" + strings.Join(names[len(names)-keep:], "/")
	}
	return strings.Join(parts, ":"), nil
}
