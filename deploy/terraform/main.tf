# latch in AWS-native mode, the Terraform equivalent of
# deploy/cloudformation/latch.yaml: the latch Lambda function with its log
# group and least-privilege execution role, the EventBridge Scheduler group
# for the per-rule backstop schedules and the role they revoke with, a
# dead-letter queue for revocations that never ran, a sweep schedule every
# minute, and optionally a CloudTrail trail for management events.
#
# The role policies are rendered from policies/*.json.tftpl, which are
# generated from latch's iampolicy package (`go test ./iampolicy -update`)
# and checked by its tests: edit the Go, not the templates.

terraform {
  required_version = ">= 1.3"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  trail_name = "${var.function_name}-trail"
  trail_arn  = "arn:${local.partition}:cloudtrail:${local.region}:${local.account_id}:trail/${local.trail_name}"
}

# --- the function -----------------------------------------------------------

resource "aws_cloudwatch_log_group" "function" {
  name              = "/aws/lambda/${var.function_name}"
  retention_in_days = var.log_retention_in_days
  tags              = var.tags
}

resource "aws_iam_role" "function" {
  name_prefix = "${var.function_name}-"
  description = "latch Lambda function (iampolicy.Lambda)"
  tags        = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "function" {
  name = "latch-lambda"
  role = aws_iam_role.function.id
  policy = templatefile("${path.module}/policies/lambda.json.tftpl", {
    partition          = local.partition
    region             = local.region
    account_id         = local.account_id
    schedule_group     = aws_scheduler_schedule_group.latch.name
    scheduler_role_arn = aws_iam_role.scheduler.arn
    log_group_arn      = aws_cloudwatch_log_group.function.arn
    session_role_arn   = aws_iam_role.session.arn
  })
}

resource "aws_lambda_function" "latch" {
  function_name     = var.function_name
  description       = "latch, AWS-native mode (sweeps and per-rule backstops)"
  role              = aws_iam_role.function.arn
  runtime           = "provided.al2023"
  handler           = "bootstrap"
  architectures     = [var.architecture]
  memory_size       = var.memory_size
  timeout           = var.timeout
  s3_bucket         = var.code_bucket
  s3_key            = var.code_key
  s3_object_version = var.code_object_version
  tags              = var.tags

  # latch's flags, as LATCH_<FLAG>; the region is Lambda's AWS_REGION.
  environment {
    variables = merge({
      LATCH_BACKSTOP_ROLE_ARN = aws_iam_role.scheduler.arn
      LATCH_BACKSTOP_GROUP    = aws_scheduler_schedule_group.latch.name
      LATCH_BACKSTOP_DLQ_ARN  = aws_sqs_queue.dead_letters.arn
      LATCH_SSM_SESSION_ROLE  = aws_iam_role.session.arn
      LATCH_LOG_FORMAT        = "json"
    }, var.policy_file == null ? {} : { LATCH_POLICY = var.policy_file })
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]
}

resource "aws_lambda_function_url" "latch" {
  count              = var.policy_file == null ? 0 : 1
  function_name      = aws_lambda_function.latch.function_name
  authorization_type = "AWS_IAM"
}

# --- Session Manager ----------------------------------------------------------

# Assumed by the function as the requester (RoleSessionName and
# SourceIdentity) to start a Session Manager session, and good for nothing
# else: only on instances tagged latch:managed=true, only with latch's three
# documents. Requesters hold no ssm:StartSession of their own.
resource "aws_iam_role" "session" {
  name_prefix = "${var.function_name}-session-"
  description = "latch Session Manager sessions, assumed as the requester (iampolicy.SessionRole)"
  tags        = var.tags
  assume_role_policy = templatefile("${path.module}/policies/session-trust.json.tftpl", {
    server_role_arn = aws_iam_role.function.arn
  })
}

resource "aws_iam_role_policy" "session" {
  name = "latch-session"
  role = aws_iam_role.session.id
  policy = templatefile("${path.module}/policies/session.json.tftpl", {
    partition  = local.partition
    region     = local.region
    account_id = local.account_id
  })
}

# --- backstop schedules -----------------------------------------------------

resource "aws_scheduler_schedule_group" "latch" {
  name = var.schedule_group_name
  tags = var.tags
}

resource "aws_sqs_queue" "dead_letters" {
  name_prefix               = "${var.function_name}-dead-letters-"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

# Assumed by the backstop schedules, whose universal targets revoke a rule
# (arn:aws:scheduler:::aws-sdk:ec2:revokeSecurityGroupIngress) or end a
# Session Manager session (arn:aws:scheduler:::aws-sdk:ssm:terminateSession)
# with no latch process involved.
resource "aws_iam_role" "scheduler" {
  name_prefix = "${var.function_name}-scheduler-"
  description = "latch backstop schedules (iampolicy.Scheduler)"
  tags        = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnEquals    = { "aws:SourceArn" = aws_scheduler_schedule_group.latch.arn }
      }
    }]
  })
}

resource "aws_iam_role_policy" "scheduler" {
  name = "latch-scheduler"
  role = aws_iam_role.scheduler.id
  policy = templatefile("${path.module}/policies/scheduler.json.tftpl", {
    partition       = local.partition
    region          = local.region
    account_id      = local.account_id
    dead_letter_arn = aws_sqs_queue.dead_letters.arn
  })
}

# --- the sweep --------------------------------------------------------------

resource "aws_iam_role" "sweep" {
  name_prefix = "${var.function_name}-sweep-"
  description = "latch sweep schedule (iampolicy.Sweeper)"
  tags        = var.tags
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnEquals    = { "aws:SourceArn" = "arn:${local.partition}:scheduler:${local.region}:${local.account_id}:schedule-group/default" }
      }
    }]
  })
}

resource "aws_iam_role_policy" "sweep" {
  name = "latch-sweeper"
  role = aws_iam_role.sweep.id
  policy = templatefile("${path.module}/policies/sweeper.json.tftpl", {
    function_arn = aws_lambda_function.latch.arn
  })
}

# In the default group, not the backstop group: the function may create,
# update and delete schedules in the backstop group, and must not be able to
# stop its own sweep.
resource "aws_scheduler_schedule" "sweep" {
  name                = "${var.function_name}-sweep"
  group_name          = "default"
  description         = "Revoke every expired latch rule found in AWS, known to a store or not."
  schedule_expression = "rate(1 minute)"
  state               = "ENABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.latch.arn
    role_arn = aws_iam_role.sweep.arn
    input    = jsonencode({ latch = "sweep" })

    retry_policy {
      maximum_retry_attempts       = 0
      maximum_event_age_in_seconds = 60
    }
  }
}

# --- optional CloudTrail trail ----------------------------------------------

resource "aws_s3_bucket" "trail" {
  count         = var.create_trail ? 1 : 0
  bucket_prefix = "${var.function_name}-trail-"
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "trail" {
  count                   = var.create_trail ? 1 : 0
  bucket                  = aws_s3_bucket.trail[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "trail" {
  count  = var.create_trail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "trail" {
  count  = var.create_trail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "trail" {
  count  = var.create_trail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

# CloudTrail's documented bucket policy, scoped to this trail.
resource "aws_s3_bucket_policy" "trail" {
  count  = var.create_trail ? 1 : 0
  bucket = aws_s3_bucket.trail[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "CloudTrailAclCheck"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:GetBucketAcl"
        Resource  = aws_s3_bucket.trail[0].arn
        Condition = { StringEquals = { "aws:SourceArn" = local.trail_arn } }
      },
      {
        Sid       = "CloudTrailWrite"
        Effect    = "Allow"
        Principal = { Service = "cloudtrail.amazonaws.com" }
        Action    = "s3:PutObject"
        Resource  = "${aws_s3_bucket.trail[0].arn}/AWSLogs/${local.account_id}/*"
        Condition = {
          StringEquals = {
            "s3:x-amz-acl"  = "bucket-owner-full-control"
            "aws:SourceArn" = local.trail_arn
          }
        }
      },
    ]
  })
}

resource "aws_cloudtrail" "latch" {
  count                         = var.create_trail ? 1 : 0
  name                          = local.trail_name
  s3_bucket_name                = aws_s3_bucket.trail[0].id
  enable_logging                = true
  is_multi_region_trail         = true
  include_global_service_events = true
  enable_log_file_validation    = true
  tags                          = var.tags

  event_selector {
    read_write_type           = "All"
    include_management_events = true
  }

  depends_on = [aws_s3_bucket_policy.trail]
}
