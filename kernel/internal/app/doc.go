// Package app assembles the kernel from its configuration: logger, database
// pool, migrations, keyring, policy engine and HTTP API. `edulure serve`,
// `edulure dev` and the end-to-end tests all start the kernel through it.
package app
