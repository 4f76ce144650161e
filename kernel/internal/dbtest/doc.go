// Package dbtest gives tests a real PostgreSQL database. With
// TEST_DATABASE_URL set (a superuser or CREATEDB role) it uses that server;
// without it, Main starts a throwaway cluster for the test binary and removes
// it afterwards, so tests never skip for want of a database. Each call to New
// clones a fresh database from a template that already holds the kernel's
// migrations, and drops it when the test ends.
package dbtest
