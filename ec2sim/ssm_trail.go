package ec2sim

// CloudTrail records of Systems Manager's session calls and STS's
// AssumeRole, shaped as CloudTrail writes them: camel-case request
// parameters, and never a session's token or a credential's secret.

import "maps"

// Event sources of the services beside EC2 that the simulator records.
const (
	SSMEventSource = "ssm.amazonaws.com"
	STSEventSource = "sts.amazonaws.com"
)

// recordSSM records an SSM call: response nil and aerr set when it
// failed, which CloudTrail records with SSM's own code. Caller holds s.mu.
func (s *Server) recordSSM(c *ssmCall, request, response map[string]any, resources []trailResource, aerr *apiError) {
	tc := trailCall{
		region: c.region, source: SSMEventSource, name: c.op, accessKeyID: c.caller.AccessKeyID,
		sourceIP: c.sourceIP, userAgent: c.userAgent, requestID: c.requestID,
		request: request, response: response, resources: resources,
	}
	if aerr != nil {
		tc.response, tc.errorCode, tc.errorMessage = nil, aerr.Code, aerr.Message
	}
	s.appendTrail(tc)
}

// recordStartSession records a StartSession call; out is nil when it
// failed. The token is left out of responseElements. Caller holds s.mu.
func (s *Server) recordStartSession(c *ssmCall, in startSessionInput, doc string, out *sessionOutput, aerr *apiError) {
	req := map[string]any{"target": deref(in.Target)}
	if in.DocumentName != nil {
		req["documentName"] = doc
	}
	if in.Reason != nil {
		req["reason"] = *in.Reason
	}
	if len(in.Parameters) > 0 {
		params := make(map[string]any, len(in.Parameters))
		for k, v := range maps.All(in.Parameters) {
			params[k] = v
		}
		req["parameters"] = params
	}
	var resp map[string]any
	if out != nil {
		resp = map[string]any{"sessionId": out.SessionID, "streamUrl": out.StreamURL}
	}
	var res []trailResource
	if in.Target != nil {
		res = []trailResource{{ResourceType: resourceTypeInstance, ResourceName: *in.Target}}
	}
	s.recordSSM(c, req, resp, res, aerr)
}
