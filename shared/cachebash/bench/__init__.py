"""`cachebash bench`: throughput, latency, claim safety and scale of a CacheBash server.

Every figure is measured over real HTTP against a server in another process, and printed next
to the same client's figure against a bare echo endpoint on the same server stack, because
absolute numbers on small shared machines move from run to run while ratios mostly do not.
"""
