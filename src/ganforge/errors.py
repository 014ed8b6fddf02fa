"""User-facing errors: the CLI prints them as one line and exits with code 2."""


class GanforgeError(Exception):
    """Bad input or an unusable environment, explained in one line for the user."""


class ConfigError(GanforgeError):
    """A configuration key or value that is not allowed."""


class DataError(GanforgeError):
    """A dataset that cannot be found, read or built."""


class TrainingDiverged(GanforgeError):
    """A loss became NaN/Inf; the last good checkpoint is kept."""
