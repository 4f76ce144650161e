// Package objectstore is the kernel's side of object storage for plugins:
// it opens the bucket of EDULURE_BLOB_URL (a directory, or any
// S3-compatible store) and records what the kernel knows of each object,
// and each plugin's usage, in Postgres (Index). The rules are
// sdk/blobstore's, which sdk/plugintest applies too.
package objectstore
