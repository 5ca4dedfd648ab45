package aws

// Exported for the external tests in estate_iam_test.go, which build on
// internal/awstest (which imports this package).
var (
	ReadRoles   = readRoles
	RoleActions = roleActions
)

// IAMAPI is iamAPI, for test doubles.
type IAMAPI = iamAPI
