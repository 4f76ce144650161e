package blobstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob/fileblob"

	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/edulure/edulure/sdk/blobstore/blobstoretest"
)

// The suite on a directory with the memory index: what sdk/plugintest runs.
func TestFileMemory(t *testing.T) {
	t.Parallel()
	bucket, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{NoTempDir: true})
	require.NoError(t, err)
	t.Cleanup(func() { bucket.Close() })
	index := blobstore.NewMemoryIndex()
	blobstoretest.Run(t, func(t *testing.T, o blobstore.Options) *blobstore.Store { return blobstore.New(bucket, index, o) })
}
