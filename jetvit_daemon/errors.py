"""The one error tree of the daemon.

Every error the daemon raises on purpose derives from `JetvitError`, so a loop boundary can tell "a known,
reported failure" from a bug. Messages name the file, field or line and what would be valid.
"""


class JetvitError(Exception):
    """Base of every error the daemon raises deliberately."""


class ConfigError(JetvitError):
    """The daemon configuration (daemon.yaml or command line) is invalid."""


class PolicyError(JetvitError):
    """The power policy file is invalid or does not fit the board."""


class TelemetryError(JetvitError):
    """Telemetry could not be read."""


class TelemetryParseError(TelemetryError):
    """A line handed to the tegrastats parser is not a tegrastats line."""


class ActuationError(JetvitError):
    """A write to the hardware (power mode, GPU frequency cap) failed or did not take effect."""


class RebootRequiredError(ActuationError):
    """nvpmodel would need a reboot to switch between these two modes; the daemon never reboots a board."""


class EngineError(JetvitError):
    """A model or engine cannot be loaded or run on this system."""


class SourceError(JetvitError):
    """A frame source cannot be opened or stopped delivering frames."""
