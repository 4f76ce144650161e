// Package dbtestmain exposes the test suite's throwaway-cluster starter to
// cmd/withpg, which lives outside kernel/ and so cannot import
// kernel/internal directly.
package dbtestmain

import "github.com/edulure/edulure/kernel/internal/dbtest"

// StartCluster starts a throwaway PostgreSQL cluster, sets
// TEST_DATABASE_URL, and returns a function that stops and removes it.
func StartCluster() (func(), error) { return dbtest.StartCluster() }
