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


# The answers every operation may give besides its own: the API's error body (network.api_errors)
# is an object with ``detail`` or, for invalid input, a list of messages per field.
ERROR_SCHEMA = {
    "type": "object",
    "description": "What is wrong: `detail`, or for invalid input each field's messages (a list).",
    "properties": {"detail": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}},
    "additionalProperties": True,
}
ERRORS = {
    "400": "Invalid input: the body names each field and what is wrong with it",
    "401": "No key, or an unknown, revoked or malformed one",
    "403": "The caller may not do this (role, site, or a site key on a people's endpoint)",
    "404": "No such object in the caller's networks",
    "405": "Method not allowed here",
    "406": "The Accept header asks for a format this endpoint does not serve",
    "409": "Where it applies: the request conflicts with what is stored (e.g. a pre-signed upload on a portal "
           "without S3 storage, a re-run of a frame catalogued in place)",
    "413": "Where it applies: the uploaded file is larger than the portal accepts",
    "415": "The body's content type is not accepted here",
    "429": "Over the request budget, or too many failed authentications from this address (Retry-After)",
}


def document_errors(result, generator, request, public):
    """Every operation lists the error answers the API gives, with their body's shape."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for item in result["paths"].values():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, text in ERRORS.items():
                responses.setdefault(code, {"description": text, "content": {"application/json": {"schema": ref}}})
    return result


# Read-only fields present only in some answers: ``separation_deg`` only with a cone search.
CONDITIONAL_FIELDS = {"separation_deg"}


def conditional_fields_optional(result, generator, request, public):
    """Fields served only sometimes are not listed as required (drf-spectacular requires every read-only one)."""
    for component in result.get("components", {}).get("schemas", {}).values():
        required = component.get("required")
        if required and CONDITIONAL_FIELDS & set(required):
            component["required"] = [name for name in required if name not in CONDITIONAL_FIELDS]
    return result
