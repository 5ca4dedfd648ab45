// Package awsauth proves an AWS IAM identity to latch the way Vault's aws
// auth method does. The client presigns an sts:GetCallerIdentity request
// with its own credentials and sends it, unsent, as its Authorization
// header ([Header]); the server sends that request to STS and believes
// whatever ARN STS answers with ([Verifier]). No secret leaves the client,
// and the server needs no AWS credentials of its own.
//
// The presigned request also signs an X-Latch-Server-ID header naming the
// latch server it is meant for ([ServerID]: by default the server's URL),
// so a server that receives it cannot replay it to another latch server,
// and it is refused once its X-Amz-Date is more than [MaxAge] old. Within
// that window each proof is accepted once ([UsedProofs]); an
// X-Latch-Nonce header of 16 random bytes, signed too, makes proofs that
// one client signs in the same second differ.
//
// Only identities from the AWS accounts the server lists are accepted.
//
// # Header format
//
//	Authorization: LatchAWS <base64(JSON{method, url, headers, body})>
package awsauth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Scheme is the Authorization scheme of an AWS IAM proof.
const Scheme = "LatchAWS"

// ServerIDHeader is the signed header that names the latch server a proof
// is meant for.
const ServerIDHeader = "X-Latch-Server-ID"

// NonceHeader is the signed header that carries a proof's nonce: 16
// random bytes in lower-case hex.
const NonceHeader = "X-Latch-Nonce"

const nonceBytes = 16

// DefaultRegion signs the request when the AWS config names no region.
const DefaultRegion = "us-east-1"

// signedRequest is a presigned request as it travels in the header. Body
// is empty for the presigned GET that [Header] makes; it is there so that
// a header-signed POST can travel too.
type signedRequest struct {
	Method  string      `json:"method"`
	URL     string      `json:"url"`
	Headers http.Header `json:"headers"`
	Body    []byte      `json:"body,omitempty"`
}

// Header returns the Authorization header value ("LatchAWS …") that proves
// cfg's identity to the latch server named serverID (normalised by
// [ServerID]; by default, the server's URL). It signs locally and calls
// nothing; the credentials are resolved from cfg as for any SDK call, and
// the endpoint is the one cfg resolves STS to (a base endpoint, if set, as
// with AWS_ENDPOINT_URL). Each call signs a new random nonce, so each
// proof is different, and each is accepted once.
func Header(ctx context.Context, cfg aws.Config, serverID string) (string, error) {
	return header(ctx, cfg, serverID, nil)
}

// header is Header, presigning with presigner if it is not nil (tests fix
// the signing time with it).
func header(ctx context.Context, cfg aws.Config, serverID string, presigner sts.HTTPPresignerV4) (string, error) {
	id, err := ServerID(serverID)
	if err != nil {
		return "", fmt.Errorf("sign AWS identity: %w", err)
	}
	var raw [nonceBytes]byte
	_, _ = rand.Read(raw[:]) // never fails; see crypto/rand
	nonce := hex.EncodeToString(raw[:])
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	opts := []func(*sts.PresignOptions){sts.WithPresignClientFromClientOptions(sts.WithAPIOptions(
		smithyhttp.SetHeaderValue(ServerIDHeader, id), smithyhttp.SetHeaderValue(NonceHeader, nonce)))}
	if presigner != nil {
		opts = append(opts, func(o *sts.PresignOptions) { o.Presigner = presigner })
	}
	req, err := sts.NewPresignClient(sts.NewFromConfig(cfg)).PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}, opts...)
	if err != nil {
		return "", fmt.Errorf("sign AWS identity: %w", err)
	}
	headers := req.SignedHeader.Clone()
	if headers.Get(ServerIDHeader) != id || headers.Get(NonceHeader) != nonce {
		return "", fmt.Errorf("sign AWS identity: the SDK did not sign %s and %s", ServerIDHeader, NonceHeader)
	}
	out, err := json.Marshal(signedRequest{Method: req.Method, URL: req.URL, Headers: headers})
	if err != nil {
		return "", fmt.Errorf("sign AWS identity: %w", err)
	}
	return Scheme + " " + base64.StdEncoding.EncodeToString(out), nil
}
