package ec2sim

import "time"

// awsManagedPolicies are the AWS managed policies the simulator knows, by
// ARN, with the default version of AWS's document. They can be attached,
// read and simulated, not changed or deleted.
var awsManagedPolicies = func() map[string]*iamPolicy {
	out := map[string]*iamPolicy{}
	add := func(name, id, version string, created time.Time, doc string) {
		arn := "arn:aws:iam::aws:policy/" + name
		out[arn] = &iamPolicy{name: name, path: "/", id: id, arn: arn, awsManaged: true, created: created, updated: created,
			versions: []iamPolicyVersion{{id: version, doc: doc, created: created}}, defaultVersion: version}
	}
	date := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	add("AmazonSSMManagedInstanceCore", "ANPAIXSHM2BNB2D3AXXRU", "v2", date("2019-05-23T16:54:21Z"), `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": [
        "ssm:DescribeAssociation",
        "ssm:GetDeployablePatchSnapshotForInstance",
        "ssm:GetDocument",
        "ssm:DescribeDocument",
        "ssm:GetManifest",
        "ssm:GetParameter",
        "ssm:GetParameters",
        "ssm:ListAssociations",
        "ssm:ListInstanceAssociations",
        "ssm:PutInventory",
        "ssm:PutComplianceItems",
        "ssm:PutConfigurePackageResult",
        "ssm:UpdateAssociationStatus",
        "ssm:UpdateInstanceAssociationStatus",
        "ssm:UpdateInstanceInformation"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel"
      ],
      "Resource": "*"
    },
    {
      "Effect": "Allow",
      "Action": [
        "ec2messages:AcknowledgeMessage",
        "ec2messages:DeleteMessage",
        "ec2messages:FailMessage",
        "ec2messages:GetEndpoint",
        "ec2messages:GetMessages",
        "ec2messages:SendReply"
      ],
      "Resource": "*"
    }
  ]
}`)
	add("AmazonEC2FullAccess", "ANPAI3VAJF5ZCRZ7MCQE6", "v5", date("2018-11-27T02:16:56Z"), `{
  "Version": "2012-10-17",
  "Statement": [
    {"Action": "ec2:*", "Effect": "Allow", "Resource": "*"},
    {"Effect": "Allow", "Action": "elasticloadbalancing:*", "Resource": "*"},
    {"Effect": "Allow", "Action": "cloudwatch:*", "Resource": "*"},
    {"Effect": "Allow", "Action": "autoscaling:*", "Resource": "*"},
    {
      "Effect": "Allow",
      "Action": "iam:CreateServiceLinkedRole",
      "Resource": "*",
      "Condition": {
        "StringEquals": {
          "iam:AWSServiceName": [
            "autoscaling.amazonaws.com",
            "ec2scheduled.amazonaws.com",
            "elasticloadbalancing.amazonaws.com",
            "spot.amazonaws.com",
            "spotfleet.amazonaws.com",
            "transitgateway.amazonaws.com"
          ]
        }
      }
    }
  ]
}`)
	add("AmazonEC2ReadOnlyAccess", "ANPAIGDT4SV4GSETWTBZK", "v1", date("2015-02-06T18:40:17Z"), `{
  "Version": "2012-10-17",
  "Statement": [
    {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
    {"Effect": "Allow", "Action": "elasticloadbalancing:Describe*", "Resource": "*"},
    {"Effect": "Allow", "Action": ["cloudwatch:ListMetrics", "cloudwatch:GetMetricStatistics", "cloudwatch:Describe*"], "Resource": "*"},
    {"Effect": "Allow", "Action": "autoscaling:Describe*", "Resource": "*"}
  ]
}`)
	add("AdministratorAccess", "ANPAIWMBCKSKIEE64ZLYK", "v1", date("2015-02-06T18:39:46Z"), `{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
}`)
	return out
}()
