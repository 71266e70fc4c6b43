"""One module per workload; each takes a target and options and returns its report section."""
