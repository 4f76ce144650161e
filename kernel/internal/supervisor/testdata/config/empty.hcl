# No plugins are installed yet.

// Both comment styles,
/* and block comments, are allowed. */
