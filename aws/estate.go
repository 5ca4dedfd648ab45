package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/latchdev/latch"
)

// EstateReader reads what `latch scan` judges, one region at a time, in a
// handful of paged calls per API (never a call per instance or group:
// roles are read once per role, trails once per trail).
type EstateReader struct {
	cfg aws.Config
}

// NewEstateReader reads with cfg's credentials; its region is replaced by
// each ReadEstate's.
func NewEstateReader(cfg aws.Config) *EstateReader {
	return &EstateReader{cfg: cfg}
}

// EstateReads is how many reads ReadEstate reports progress over: groups,
// instances, launch templates, trails, Session Manager agents, and
// instance roles (after the instances, which name their profiles).
const EstateReads = 6

// ReadEstate reads region. A read AWS refuses or does not offer becomes a
// NotChecked entry and the others go on; any other failure (the network,
// throttling the SDK's retries did not outlast) is returned, as is the
// case where every read was refused. progress, if not nil, is called as
// reads complete, with how many of the EstateReads are done.
func (r *EstateReader) ReadEstate(ctx context.Context, region string, progress func(done, total int)) (latch.Estate, error) {
	cfg := r.cfg.Copy()
	cfg.Region = region
	ec2c, ct, ssmc, iamc := ec2.NewFromConfig(cfg), cloudtrail.NewFromConfig(cfg), ssm.NewFromConfig(cfg), iam.NewFromConfig(cfg)

	est := latch.Estate{Region: region}
	var (
		mu        sync.Mutex
		done      int
		ssmStatus map[latch.InstanceID]string
	)
	// finish records one read's outcome: a refusal as not checked, any
	// other error returned.
	finish := func(check latch.Check, err error) error {
		mu.Lock()
		defer mu.Unlock()
		done++
		if progress != nil {
			progress(done, EstateReads)
		}
		if err == nil {
			return nil
		}
		if n, ok := notChecked(check, region, err); ok {
			est.NotChecked = append(est.NotChecked, n)
			return nil
		}
		return fmt.Errorf("scan %s: %s: %w", region, check, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		groups, err := readGroups(gctx, ec2c)
		est.Groups = groups
		return finish(latch.CheckGroups, err)
	})
	g.Go(func() error {
		instances, err := readInstances(gctx, ec2c)
		est.Instances = instances
		return finish(latch.CheckInstances, err)
	})
	g.Go(func() error {
		templates, err := readLaunchTemplates(gctx, ec2c)
		est.LaunchTemplates = templates
		return finish(latch.CheckLaunchTemplates, err)
	})
	g.Go(func() error {
		trails, err := readTrails(gctx, ct, region)
		est.Trails = trails
		return finish(latch.CheckTrails, err)
	})
	g.Go(func() error {
		status, err := readSSM(gctx, ssmc)
		ssmStatus = status
		return finish(latch.CheckSSM, err)
	})
	if err := g.Wait(); err != nil {
		return latch.Estate{}, err
	}
	var profiles []string // readRoles skips repeats and ""
	for i, in := range est.Instances {
		est.Instances[i].SSM = ssmStatus[in.ID]
		profiles = append(profiles, in.InstanceProfile)
	}
	if !est.Checked(latch.CheckInstances) {
		est.NotChecked = append(est.NotChecked, latch.NotChecked{Check: latch.CheckRoles, Region: region,
			Reason: "the instances could not be read, so neither could their roles"})
		if err := finish(latch.CheckRoles, nil); err != nil {
			return latch.Estate{}, err
		}
	} else {
		roles, skipped, err := readRoles(ctx, iamc, profiles)
		est.Roles = roles
		est.NotChecked = append(est.NotChecked, skipped...)
		if err := finish(latch.CheckRoles, err); err != nil {
			return latch.Estate{}, err
		}
	}
	if refusedAll(est) {
		return latch.Estate{}, latch.Errorf(latch.EFORBIDDEN, "scan %s: every read was refused; the first: %s", region, est.NotChecked[0].Reason)
	}
	slices.SortFunc(est.NotChecked, func(a, b latch.NotChecked) int {
		return strings.Compare(string(a.Check)+a.Resource, string(b.Check)+b.Resource)
	})
	return est, nil
}

// refusedAll reports whether nothing at all could be read.
func refusedAll(est latch.Estate) bool {
	for _, c := range []latch.Check{latch.CheckGroups, latch.CheckInstances, latch.CheckLaunchTemplates, latch.CheckTrails, latch.CheckSSM} {
		if est.Checked(c) {
			return false
		}
	}
	return true
}

// refusalCodes are AWS's answers to a caller its policies do not allow,
// per API family; missingCodes those of an endpoint that does not offer
// the API at all (an older or partial implementation).
var (
	refusalCodes = []string{"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess", "AuthorizationError"}
	missingCodes = []string{"InvalidAction", "UnknownOperationException", "UnsupportedOperation", "NotImplemented"}
)

// notChecked turns a refused or missing API into a NotChecked entry.
func notChecked(check latch.Check, region string, err error) (latch.NotChecked, bool) {
	code := apiCode(err)
	if code == "" {
		return latch.NotChecked{}, false
	}
	n := latch.NotChecked{Check: check, Region: region, API: apiName(err), Reason: awsReason(err)}
	switch {
	case slices.Contains(refusalCodes, code):
		return n, true
	case slices.Contains(missingCodes, code):
		n.Reason = "not offered by this endpoint: " + n.Reason
		return n, true
	}
	return latch.NotChecked{}, false
}

// apiName names the call that failed as IAM names its action
// ("ec2:DescribeKeyPairs"), from the SDK's operation error.
func apiName(err error) string {
	var op *smithy.OperationError
	if errors.As(err, &op) {
		return iamPrefix(op.Service()) + ":" + op.Operation()
	}
	return ""
}

// iamPrefix is a service's IAM action prefix from the SDK's service ID.
func iamPrefix(serviceID string) string {
	switch serviceID {
	case "EC2":
		return "ec2"
	case "IAM":
		return "iam"
	case "CloudTrail":
		return "cloudtrail"
	case "SSM":
		return "ssm"
	}
	return serviceID
}
