"""The whole Google Cloud topology on one machine (`make cloud-local`), for people and for the
end-to-end tests in tests/cloud: the deploy plan's functions under functions-framework, on
Google's Firestore and Pub/Sub emulators, wired as the deploy wires them.

A development tool: `cachebash deploy` leaves it out of the function source.
"""

from cachebash.cloud_local.topology import Options, Topology, run

__all__ = ["Options", "Topology", "run"]
