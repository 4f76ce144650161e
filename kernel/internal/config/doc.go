// Package config reads the kernel's configuration from environment variables
// (twelve-factor) and validates it at start: a missing or malformed value is
// an error naming the variable.
package config
