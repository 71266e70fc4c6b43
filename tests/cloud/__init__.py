"""The cloud-local suite (a package, so that its topology is stopped when the suite ends)."""
