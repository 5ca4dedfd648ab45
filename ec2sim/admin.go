package ec2sim

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"time"
)

// adminPrefix is where the simulator's own endpoints live. EC2 only ever
// sees requests for "/", so nothing real collides with it.
const adminPrefix = "/_sim/"

// faultsJSON is Faults on the wire, with the latency as a Go duration
// string ("250ms") rather than nanoseconds.
type faultsJSON struct {
	ThrottleRate     float64  `json:"throttle_rate"`
	ServerErrorRate  float64  `json:"server_error_rate"`
	LostResponseRate float64  `json:"lost_response_rate"`
	Latency          string   `json:"latency"`
	Actions          []string `json:"actions"`
	Limit            int      `json:"limit"`
	Seed             int64    `json:"seed"`
}

// serveAdmin serves the control endpoints a test in another process uses:
//
//	GET  /_sim/faults                 the faults in force
//	POST /_sim/faults                 replace them (JSON faultsJSON)
//	GET  /_sim/rules?region=&group=   a JSON snapshot of ingress rules
//	GET  /_sim/calls                  requests received, per action
//	GET  /_sim/throttle               request throttling's buckets (null when off) and requests throttled, per action
//	POST /_sim/throttle               turn it on ({"scale": 1} for EC2's defaults, or
//	                                  {"buckets": {…Throttle…}}) or off ({"off": true})
//	GET  /_sim/cloudtrail             CloudTrail's delivery delay ({"delay": "5m0s"})
//	POST /_sim/cloudtrail             set it ({"delay": "5m"})
//	GET  /_sim/instance-connect/keys?region=&instance=&user=
//	                                  unexpired pushed keys, authorized_keys lines
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case adminPrefix + "faults":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, toFaultsJSON(s.CurrentFaults()))
		case http.MethodPost, http.MethodPut:
			var fj faultsJSON
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&fj); err != nil {
				http.Error(w, fmt.Sprintf("decode faults: %v", err), http.StatusBadRequest)
				return
			}
			f, err := fj.faults()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			s.SetFaults(f)
			writeJSON(w, toFaultsJSON(s.CurrentFaults()))
		default:
			http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		}
	case adminPrefix + "rules":
		region := r.URL.Query().Get("region")
		if region == "" {
			region = DefaultRegion
		}
		rules := s.Rules(region, r.URL.Query().Get("group"))
		if rules == nil {
			rules = []Rule{}
		}
		writeJSON(w, rules)
	case adminPrefix + "cloudtrail":
		s.serveAdminCloudTrail(w, r)
	case adminPrefix + "instance-connect/keys":
		s.serveAdminPushedKeys(w, r)
	case adminPrefix + "throttle":
		s.serveAdminThrottle(w, r)
	case adminPrefix + "calls":
		s.lock()
		calls := maps.Clone(s.calls)
		s.unlock()
		writeJSON(w, calls)
	default:
		http.NotFound(w, r)
	}
}

// cloudTrailJSON is CloudTrail's settings on the wire.
type cloudTrailJSON struct {
	Delay string `json:"delay"`
}

func (s *Server) serveAdminCloudTrail(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		var cj cloudTrailJSON
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cj); err != nil {
			http.Error(w, fmt.Sprintf("decode cloudtrail settings: %v", err), http.StatusBadRequest)
			return
		}
		d, err := time.ParseDuration(cj.Delay)
		if err != nil || d < 0 {
			http.Error(w, fmt.Sprintf("delay %q: want a duration such as 5m", cj.Delay), http.StatusBadRequest)
			return
		}
		s.SetCloudTrailDelay(d)
	default:
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	writeJSON(w, cloudTrailJSON{Delay: s.CloudTrailDelay().String()})
}

func (fj faultsJSON) faults() (Faults, error) {
	f := Faults{
		ThrottleRate:     fj.ThrottleRate,
		ServerErrorRate:  fj.ServerErrorRate,
		LostResponseRate: fj.LostResponseRate,
		Actions:          fj.Actions,
		Limit:            fj.Limit,
		Seed:             fj.Seed,
	}
	for name, rate := range map[string]float64{
		"throttle_rate": f.ThrottleRate, "server_error_rate": f.ServerErrorRate, "lost_response_rate": f.LostResponseRate,
	} {
		if rate < 0 || rate > 1 {
			return Faults{}, fmt.Errorf("%s %v: want a fraction from 0 to 1", name, rate)
		}
	}
	if fj.Latency != "" {
		d, err := time.ParseDuration(fj.Latency)
		if err != nil || d < 0 {
			return Faults{}, fmt.Errorf("latency %q: want a duration such as 250ms", fj.Latency)
		}
		f.Latency = d
	}
	return f, nil
}

func toFaultsJSON(f Faults) faultsJSON {
	fj := faultsJSON{
		ThrottleRate:     f.ThrottleRate,
		ServerErrorRate:  f.ServerErrorRate,
		LostResponseRate: f.LostResponseRate,
		Actions:          f.Actions,
		Limit:            f.Limit,
		Seed:             f.Seed,
	}
	if f.Latency > 0 {
		fj.Latency = f.Latency.String()
	}
	return fj
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// throttleJSON is request throttling's settings on the wire.
type throttleJSON struct {
	Off       bool           `json:"off,omitempty"`
	Scale     float64        `json:"scale,omitempty"`
	Buckets   *Throttle      `json:"buckets"`
	Throttled map[string]int `json:"throttled,omitempty"` // in answers only
}

func (s *Server) serveAdminThrottle(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPost, http.MethodPut:
		var tj throttleJSON
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&tj); err != nil {
			http.Error(w, fmt.Sprintf("decode throttle settings: %v", err), http.StatusBadRequest)
			return
		}
		switch {
		case tj.Off:
			s.SetThrottle(nil)
		case tj.Buckets != nil:
			s.SetThrottle(tj.Buckets)
		case tj.Scale > 0:
			s.SetThrottle(EC2Throttle().Scale(tj.Scale))
		default:
			http.Error(w, `want {"off": true}, {"scale": N} with N above 0 (1 is EC2's defaults), or {"buckets": {...}}`, http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	s.lock()
	out := throttleJSON{Buckets: s.throttle.clone(), Throttled: maps.Clone(s.throttled)}
	s.unlock()
	writeJSON(w, out)
}
