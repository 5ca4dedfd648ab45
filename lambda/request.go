package lambda

import (
	"encoding/base64"
	"net/netip"

	"github.com/latchdev/latch"
	"github.com/latchdev/latch/broker"
	latchhttp "github.com/latchdev/latch/http"
)

// decodeURLRequest reads a function URL body as the API's request body.
func decodeURLRequest(body []byte, b64 bool, observed netip.Addr) (broker.RequestInput, error) {
	if b64 {
		dec, err := base64.StdEncoding.DecodeString(string(body))
		if err != nil {
			return broker.RequestInput{}, latch.Invalidf("body", "not base64: %v", err)
		}
		body = dec
	}
	return latchhttp.DecodeRequest(body, observed)
}
