"""The agent's exceptions. The command line prints any :class:`AgentError` as one message."""


class AgentError(Exception):
    """Base class: an expected failure with a message an operator can act on."""


class ConfigError(AgentError):
    """The configuration file is missing, unreadable or invalid; the message lists every problem."""


class QueueError(AgentError):
    """The upload queue database cannot be opened or is damaged."""


class DriverError(AgentError):
    """Hardware cannot be reached or refused a command (the message names the device)."""


class DriverCrashedError(DriverError):
    """The process running a native hardware library died; it is restarted on the next command."""
