package aws

// The scan's read functions, for the integration tests in package aws_test
// (which use internal/awstest, which imports this package).
var (
	ReadLaunchTemplates = readLaunchTemplates
	ReadTrails          = readTrails
	ReadSSM             = readSSM
)
