"""OpenAPI description of the Bearer key authentication (imported at app start)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "network.api.BearerKeyAuthentication"
    name = "bearerKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A site key (dsk_..., for agents) or a personal token (dut_..., for people).",
        }


def strip_trailing_slashes(result, generator, request, public):
    """Document the canonical paths (``/api/v1/targets``); the slash is accepted but optional."""
    result["paths"] = {path.rstrip("/") or "/": item for path, item in result["paths"].items()}
    return result
