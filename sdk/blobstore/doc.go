// Package blobstore is object storage as the kernel serves it to plugins,
// shared by the kernel and sdk/plugintest so that both apply one contract:
// the layout of keys and what a plugin may name (key.go), the quota and
// write-once rules and the SHA-256 recorded while an object streams in
// (store.go), the Host service's object calls (service.go) and the URLs
// the kernel signs and serves itself (sign.go, signed.go).
//
// The bytes live in a gocloud.dev/blob bucket (a directory, or any
// S3-compatible store); what is known about each object (size, media type,
// SHA-256) and each plugin's usage lives in an Index: Postgres in the
// kernel, memory in plugintest.
//
// Plugin authors do not need this package: they use sdk.Bucket.
package blobstore
