output "function_arn" {
  value = aws_lambda_function.latch.arn
}

output "function_role_arn" {
  description = "The function's execution role (the policy of `latch iam-policy --for lambda`)."
  value       = aws_iam_role.function.arn
}

output "scheduler_role_arn" {
  description = "Give this to latch as the scheduler role of its backstop schedules."
  value       = aws_iam_role.scheduler.arn
}

output "session_role_arn" {
  description = "The role latch assumes, as the requester, to start Session Manager sessions (latch --ssm-session-role)."
  value       = aws_iam_role.session.arn
}

output "schedule_group_name" {
  value = aws_scheduler_schedule_group.latch.name
}

output "dead_letter_queue_arn" {
  value = aws_sqs_queue.dead_letters.arn
}

output "log_group_name" {
  value = aws_cloudwatch_log_group.function.name
}

output "function_url" {
  description = "Requests to it must be signed (AWS_IAM); the caller needs lambda:InvokeFunctionUrl on the function."
  value       = var.policy_file == null ? null : aws_lambda_function_url.latch[0].function_url
}

output "trail_arn" {
  value = var.create_trail ? aws_cloudtrail.latch[0].arn : null
}
