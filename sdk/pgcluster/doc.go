// Package pgcluster runs a local PostgreSQL cluster from the server binaries
// installed on the machine (initdb, pg_ctl). It backs `edulure dev` (make run)
// and the throwaway clusters of the test suite. PostgreSQL refuses to run as
// root, so when the caller is root the server runs as the "postgres" user,
// and a cluster asked for where that user cannot reach is kept where it can
// (see Open).
package pgcluster
