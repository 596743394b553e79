"""Everything that touches a board: telemetry, power modes, GPU frequency caps, baseline and restore."""
