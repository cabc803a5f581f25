"""Exceptions raised by the image science, each with a message a user can act on."""


class PipelineError(Exception):
    """Base class: the command line prints the message and exits non-zero."""


class FrameReadError(PipelineError):
    """A file is not FITS, is truncated, or has no usable image data."""


class NoStarsError(PipelineError):
    """Too few sources were detected for the requested operation."""


class RegistrationError(PipelineError):
    """A frame could not be aligned on the reference, or its alignment failed a quality gate."""


class StackingError(PipelineError):
    """Frames cannot be stacked together (shapes differ, nothing to stack, memory budget too small)."""


class ColorError(PipelineError):
    """Masters cannot be combined into a colour image (missing channel, failed registration)."""
