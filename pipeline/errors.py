"""Exceptions raised by the image science, each with a message a user can act on."""


class PipelineError(Exception):
    """Base class: the command line prints the message and exits non-zero."""


class FrameReadError(PipelineError):
    """A file is not FITS, is truncated, or has no usable image data."""


class NoStarsError(PipelineError):
    """Too few sources were detected for the requested operation."""
