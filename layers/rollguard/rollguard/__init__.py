"""Rollguard's shared package: the domain, the policy model and the AWS adapters (shipped as a Lambda layer)."""
