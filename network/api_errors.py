"""The API's exception handler (``REST_FRAMEWORK['EXCEPTION_HANDLER']``).

Its own module: DRF imports the authentication classes in network/api.py while
rest_framework.views is still loading, so the handler cannot live there.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ClientInputError(ValueError):
    """Input a client can fix, refused below a view (a sky position out of range, ...): answered as a 400.

    Apps subclass it (targets.sky.InvalidSkyPosition), so the project package needs to know none of them.
    """


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, plus the domain's input errors raised below a view, as 400s with their message.

    Services validate too (a model's ``full_clean``, a sky position's range); what they refuse
    is the client's to fix, so it must never surface as a 500.
    """
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})
    elif isinstance(exc, ClientInputError):
        exc = exceptions.ValidationError({"detail": str(exc)})
    return exception_handler(exc, context)
