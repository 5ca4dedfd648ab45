package http

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/latchdev/latch"
)

// statuses maps latch error codes to HTTP statuses; Client maps them back.
var statuses = map[string]int{
	latch.EINVALID:         http.StatusBadRequest,
	latch.EUNAUTHENTICATED: http.StatusUnauthorized,
	latch.EFORBIDDEN:       http.StatusForbidden,
	latch.ENOTFOUND:        http.StatusNotFound,
	latch.ECONFLICT:        http.StatusConflict,
	latch.EUNAVAILABLE:     http.StatusServiceUnavailable,
	latch.EINTERNAL:        http.StatusInternalServerError,
	codeRateLimited:        http.StatusTooManyRequests,
	codeTooLarge:           http.StatusRequestEntityTooLarge,
}

// Codes that exist only on the wire.
const (
	codeRateLimited = "rate_limited"
	codeTooLarge    = "too_large"
)

// ErrorBody is every error response: {code, message, field, request_id}.
type ErrorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// writeError answers with err. Internal errors are logged and hidden:
// their text may say more than a caller should learn.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := ErrorBody{Code: latch.ErrorCode(err), RequestID: requestID(r.Context())}
	if e, ok := errors.AsType[*latch.Error](err); ok {
		body.Message, body.Field = e.Message, e.Field
	}
	if body.Code == latch.EINTERNAL || body.Code == latch.EUNAVAILABLE {
		s.logger(r).ErrorContext(r.Context(), "request failed", "err", err)
		if body.Code == latch.EINTERNAL {
			body.Message = "internal error; see the server log for request " + body.RequestID
		}
	}
	writeJSON(w, Status(err), body)
}

// Status is the HTTP status for err, as the API answers it; the portal's
// pages answer with the same.
func Status(err error) int {
	if status, ok := statuses[latch.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
