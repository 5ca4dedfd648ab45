package ec2sim

// Deny makes the simulator refuse each api, named as IAM names actions
// ("ec2:DescribeKeyPairs", "iam:SimulatePrincipalPolicy",
// "cloudtrail:DescribeTrails"), as AWS refuses a caller whose policies do
// not allow it: EC2 answers UnauthorizedOperation (403), IAM AccessDenied
// (403), CloudTrail and Systems Manager AccessDeniedException (400). The
// refusal applies to every caller, changes nothing, and is counted in
// Calls. Allow undoes it.
func (s *Server) Deny(apis ...string) {
	s.lock()
	defer s.unlock()
	if s.denied == nil {
		s.denied = map[string]bool{}
	}
	for _, a := range apis {
		s.denied[a] = true
	}
}

// Allow undoes Deny for each api.
func (s *Server) Allow(apis ...string) {
	s.lock()
	defer s.unlock()
	for _, a := range apis {
		delete(s.denied, a)
	}
}

// deniedLocked reports whether api is refused. Caller holds s.mu.
func (s *Server) deniedLocked(api string) bool { return s.denied[api] }

// CodeUnauthorizedOperation is EC2's answer to a call the caller's
// policies do not allow.
const CodeUnauthorizedOperation = "UnauthorizedOperation"

func unauthorized(api string) *apiError {
	return errf(CodeUnauthorizedOperation, "You are not authorized to perform this operation. (%s denied by ec2sim)", api)
}
