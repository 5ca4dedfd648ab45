package ec2sim

import (
	"crypto/sha256"
	"encoding/base32"
	"regexp"
	"strings"
)

// profileARNRE is an instance profile's ARN: the simulator's IAM need not
// know the profile (EC2 checks with IAM at launch; the simulator does not).
var profileARNRE = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:instance-profile/[\w+=,.@/-]{1,128}$`)

// profileNameRE is an instance profile's name as IAM allows it.
var profileNameRE = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)

type xmlIamInstanceProfile struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

// xmlProfile renders an instance's profile, nil for none.
func xmlProfile(arn string) *xmlIamInstanceProfile {
	if arn == "" {
		return nil
	}
	return &xmlIamInstanceProfile{Arn: arn, ID: profileID(arn)}
}

// profileID is a stable instance profile ID (AIPA and 17 characters, as
// IAM's unique IDs look) derived from the ARN, so that the simulator's
// EC2 and IAM agree on it without sharing state.
func profileID(arn string) string {
	sum := sha256.Sum256([]byte(arn))
	return "AIPA" + base32.StdEncoding.EncodeToString(sum[:])[:17]
}

// profileARN turns an instance profile reference (an ARN, or a name) into
// its ARN in this account; ok is false when it is neither.
func (s *Server) profileARN(ref string) (string, bool) {
	if strings.HasPrefix(ref, "arn:") {
		return ref, profileARNRE.MatchString(ref)
	}
	return "arn:aws:iam::" + s.accountID() + ":instance-profile/" + ref, profileNameRE.MatchString(ref)
}

// launchIdentity reads RunInstances' KeyName (which must name a key pair
// of the region) and IamInstanceProfile.Arn or .Name (not both).
func (s *Server) launchIdentity(r *region, p params) (keyName, profileARN string, aerr *apiError) {
	if k, ok := p.get("KeyName"); ok && k != "" {
		if _, ok := r.keyPairsOf()[k]; !ok {
			return "", "", errf(CodeInvalidKeyPairNotFound, "The key pair '%s' does not exist", k)
		}
		keyName = k
	}
	arn, name := p.str("IamInstanceProfile.Arn"), p.str("IamInstanceProfile.Name")
	switch {
	case arn != "" && name != "":
		return "", "", errf(CodeInvalidParameterCombination, "The parameter 'iamInstanceProfile.name' may not be used in combination with 'iamInstanceProfile.arn'")
	case arn != "":
		a, ok := s.profileARN(arn)
		if !ok || !strings.HasPrefix(arn, "arn:") {
			return "", "", invalidValue("IamInstanceProfile.Arn", arn, "It must be an instance profile ARN (arn:aws:iam::ACCOUNT:instance-profile/NAME).")
		}
		profileARN = a
	case name != "":
		a, ok := s.profileARN(name)
		if !ok || strings.HasPrefix(name, "arn:") {
			return "", "", invalidValue("IamInstanceProfile.Name", name, "It must be an instance profile name.")
		}
		profileARN = a
	}
	return keyName, profileARN, nil
}
