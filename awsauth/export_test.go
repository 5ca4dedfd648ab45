package awsauth

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// HeaderAt is Header with the SDK's signer, signing as if the time were
// at, so that tests can make two proofs in one second for certain.
func HeaderAt(ctx context.Context, cfg aws.Config, serverID string, at time.Time) (string, error) {
	return header(ctx, cfg, serverID, fixedTime{v4.NewSigner(), at})
}

type fixedTime struct {
	*v4.Signer
	at time.Time
}

func (f fixedTime) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string,
	_ time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	return f.Signer.PresignHTTP(ctx, creds, r, payloadHash, service, region, f.at, optFns...)
}
