package aws

// The estate readers are unexported (the region orchestrator calls them);
// the tests, in package aws_test for internal/awstest, reach them here.
var (
	ReadGroups    = readGroups
	ReadInstances = readInstances
)
