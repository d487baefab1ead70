"""Rollguard's operator CLI and local sandbox. A development tool: never shipped in the Lambda layer."""
