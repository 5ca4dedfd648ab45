package awsauth_test

import (
	"testing"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/awsauth"
)

func TestNormalizeARN(t *testing.T) {
	tests := []struct {
		name, in, want string // want "" means EINVALID
	}{
		{name: "assumed role", in: "arn:aws:sts::111122223333:assumed-role/deploy/ci-run-7", want: "arn:aws:sts::111122223333:assumed-role/deploy/ci-run-7"},
		{name: "assumed role with a path", in: "arn:aws:sts::111122223333:assumed-role/teams/ops/deploy/ci-run-7", want: "arn:aws:sts::111122223333:assumed-role/deploy/ci-run-7"},
		{name: "user", in: "arn:aws:iam::111122223333:user/alice", want: "arn:aws:iam::111122223333:user/alice"},
		{name: "user with a path", in: "arn:aws:iam::111122223333:user/engineering/platform/alice", want: "arn:aws:iam::111122223333:user/alice"},
		{name: "role with a path", in: "arn:aws:iam::111122223333:role/service/deploy", want: "arn:aws:iam::111122223333:role/deploy"},
		{name: "root", in: "arn:aws:iam::111122223333:root", want: "arn:aws:iam::111122223333:root"},
		{name: "federated user", in: "arn:aws:sts::111122223333:federated-user/bob", want: "arn:aws:sts::111122223333:federated-user/bob"},
		{name: "other partition", in: "arn:aws-us-gov:iam::111122223333:user/a/b", want: "arn:aws-us-gov:iam::111122223333:user/b"},
		{name: "not an ARN", in: "alice"},
		{name: "no account", in: "arn:aws:iam:::user/alice"},
		{name: "assumed role without session", in: "arn:aws:sts::111122223333:assumed-role/deploy"},
		{name: "user without name", in: "arn:aws:iam::111122223333:user/"},
		{name: "empty path segment", in: "arn:aws:iam::111122223333:user//alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := awsauth.NormalizeARN(tt.in)
			if tt.want == "" {
				if latch.ErrorCode(err) != latch.EINVALID {
					t.Fatalf("NormalizeARN(%q) = %q, %v; want EINVALID", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("NormalizeARN(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
