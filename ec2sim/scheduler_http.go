package ec2sim

// Scheduler's REST JSON protocol: which operation a method and path name,
// and errors as Scheduler answers them (the code in x-amzn-ErrorType, the
// message in a JSON body's Message, and the matching HTTP status).

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// schedRequest is one Scheduler request as the operations see it.
type schedRequest struct {
	op     string
	region string
	name   string // the {Name} in the path, unescaped
	query  url.Values
	body   []byte
}

// schedOp is one Scheduler operation. It runs with s.mu held, and must
// change nothing when it returns an error.
type schedOp func(s *Server, sr *schedRegion, req *schedRequest) (any, *apiError)

// schedOps is the dispatch table; it is never modified.
var schedOps = map[string]schedOp{
	"CreateSchedule":      (*Server).createSchedule,
	"GetSchedule":         (*Server).getSchedule,
	"UpdateSchedule":      (*Server).updateSchedule,
	"DeleteSchedule":      (*Server).deleteSchedule,
	"ListSchedules":       (*Server).listSchedules,
	"CreateScheduleGroup": (*Server).createScheduleGroup,
	"GetScheduleGroup":    (*Server).getScheduleGroup,
	"DeleteScheduleGroup": (*Server).deleteScheduleGroup,
	"ListScheduleGroups":  (*Server).listScheduleGroups,
}

// schedRoute names the operation for r's method and path, as the SDK's
// serializers build them; ok is false for paths that are not Scheduler's.
func schedRoute(r *http.Request) (op, name string, ok bool) {
	path := r.URL.Path
	var byMethod map[string]string
	switch {
	case path == "/schedules":
		byMethod = map[string]string{http.MethodGet: "ListSchedules"}
	case strings.HasPrefix(path, "/schedules/"):
		name = strings.TrimPrefix(path, "/schedules/")
		byMethod = map[string]string{
			http.MethodPost: "CreateSchedule", http.MethodGet: "GetSchedule",
			http.MethodPut: "UpdateSchedule", http.MethodDelete: "DeleteSchedule",
		}
	case path == "/schedule-groups":
		byMethod = map[string]string{http.MethodGet: "ListScheduleGroups"}
	case strings.HasPrefix(path, "/schedule-groups/"):
		name = strings.TrimPrefix(path, "/schedule-groups/")
		byMethod = map[string]string{
			http.MethodPost: "CreateScheduleGroup", http.MethodGet: "GetScheduleGroup", http.MethodDelete: "DeleteScheduleGroup",
		}
	default:
		return "", "", false
	}
	return byMethod[r.Method], name, true
}

// serveScheduler answers r if it is a Scheduler request, and reports
// whether it was. Faults set with SetFaults apply, by operation name.
func (s *Server) serveScheduler(w http.ResponseWriter, r *http.Request) bool {
	op, name, ok := schedRoute(r)
	if !ok {
		return false
	}
	if op == "" {
		s.lock()
		w.Header().Set("x-amzn-RequestId", s.ids.request())
		s.unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-ErrorType", CodeUnknownOperation)
		w.WriteHeader(schedStatus(CodeUnknownOperation))
		_, _ = w.Write(marshalJSON(map[string]string{"Message": "ec2sim does not model " + r.Method + " " + r.URL.Path + "."}))
		return true
	}
	body, readErr := io.ReadAll(r.Body)
	req := &schedRequest{op: op, name: name, query: r.URL.Query(), body: body}
	req.region, _ = credentialScope(r)

	s.lock()
	requestID := s.ids.request()
	s.calls[op]++
	fault, latency := s.drawFault(op)
	s.unlock()

	w.Header().Set("x-amzn-RequestId", requestID)
	if latency > 0 && !wait(r.Context(), latency) {
		return true
	}
	var out any
	var aerr *apiError
	switch {
	case readErr != nil:
		aerr = errf(CodeSerializationException, "The request body could not be read: %v", readErr)
	case fault == faultThrottle:
		aerr = errf(CodeThrottlingException, "Rate exceeded")
	case fault == faultServerError:
		aerr = errf(CodeInternalServerException, "Unexpected error encountered while processing the request. (injected by ec2sim)")
	default:
		s.lock()
		out, aerr = schedOps[op](s, s.scheduler(req.region), req)
		s.unlock()
		if fault == faultLostResponse {
			out, aerr = nil, errf(CodeInternalServerException,
				"Unexpected error encountered while processing the request. (response lost, injected by ec2sim)")
		}
	}

	log := s.log()
	w.Header().Set("Content-Type", "application/json")
	if aerr != nil {
		log.Debug("scheduler request", "operation", op, "region", req.region, "request_id", requestID,
			"error", aerr.Code, "message", aerr.Message)
		w.Header().Set("X-Amzn-ErrorType", aerr.Code)
		w.WriteHeader(schedStatus(aerr.Code))
		_, _ = w.Write(marshalJSON(map[string]string{"Message": aerr.Message}))
		return true
	}
	log.Debug("scheduler request", "operation", op, "region", req.region, "request_id", requestID)
	if out == nil {
		out = struct{}{}
	}
	_, _ = w.Write(marshalJSON(out))
	return true
}

// schedStatus is the HTTP status Scheduler sends with code.
func schedStatus(code string) int {
	switch code {
	case CodeConflictException:
		return http.StatusConflict
	case CodeResourceNotFoundException, CodeUnknownOperation:
		return http.StatusNotFound
	case CodeThrottlingException:
		return http.StatusTooManyRequests
	case CodeInternalServerException:
		return http.StatusInternalServerError
	default:
		return http.StatusBadRequest
	}
}

// decodeBody reads a request's JSON body into v. An empty body is an
// empty object, as the SDK sends for operations with no body members.
func (req *schedRequest) decodeBody(v any) *apiError {
	if len(strings.TrimSpace(string(req.body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(req.body, v); err != nil {
		return errf(CodeSerializationException, "The request body is not valid JSON for %s: %v", req.op, err)
	}
	return nil
}

// optional returns the query parameter name, nil when absent.
func (req *schedRequest) optional(name string) *string {
	if !req.query.Has(name) {
		return nil
	}
	v := req.query.Get(name)
	return &v
}
