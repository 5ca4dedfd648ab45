variable "code_bucket" {
  description = "S3 bucket holding the function's zip (latch built as bootstrap for provided.al2023), in the provider's region."
  type        = string
}

variable "code_key" {
  description = "Key of the zip in code_bucket."
  type        = string
}

variable "code_object_version" {
  description = "Version of the zip object, for versioned buckets; null for the latest."
  type        = string
  default     = null
}

variable "function_name" {
  description = "Name of the Lambda function; its log group is /aws/lambda/NAME."
  type        = string
  default     = "latch"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name: 1 to 64 letters, digits, '-' or '_'."
  }
}

variable "architecture" {
  description = "Instruction set the bootstrap executable was built for."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture: arm64 or x86_64."
  }
}

variable "memory_size" {
  type    = number
  default = 256
}

variable "timeout" {
  description = "Seconds a single invocation (one sweep) may run."
  type        = number
  default     = 60
}

variable "log_retention_in_days" {
  type    = number
  default = 90
}

variable "schedule_group_name" {
  description = "EventBridge Scheduler group of the per-rule backstop schedules (the sweep schedule lives in the default group, out of the function's reach)."
  type        = string
  default     = "latch"

  validation {
    condition     = can(regex("^[0-9a-zA-Z_.-]{1,64}$", var.schedule_group_name))
    error_message = "schedule_group_name: 1 to 64 letters, digits, '-', '_' or '.'."
  }
}

variable "policy_file" {
  description = "Path, inside the zip (e.g. /var/task/policy.yaml), of the access policy for function URL requests; null for no function URL (sweeps and direct invokes only). With it, the module creates a function URL with AWS_IAM auth."
  type        = string
  default     = null
}

variable "create_trail" {
  description = "Create a multi-region CloudTrail trail for management events (long-term evidence for `latch audit`); leave false if the account already has one."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}
