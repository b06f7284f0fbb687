"""Check a JSON body against a schema of a Google discovery document (the
ones bundled in google-api-python-client): unknown fields, JSON types and
formats, enum values, output-only fields, fields documented as Required.

    doc = discovery_document("aiplatform", "v1")
    assert check(doc, "GoogleCloudAiplatformV1CustomJob", body) == []

The client library sends whatever dict it is given; the real API answers a
bad body with a 400 only at run time, in the cloud. This catches it here.
Pass response=True to check what a server returns (output-only allowed).
"""
import base64
import re

INT32 = (-2**31, 2**31 - 1)
UINT32 = (0, 2**32 - 1)
_DURATION = re.compile(r"^-?\d+(\.\d{1,9})?s$")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
_INT64 = re.compile(r"^-?\d+$")


def check(doc, schema_id, value, response=False):
    """A list of problems ('$.jobSpec.foo: ...'), empty when VALUE is valid."""
    errors = []
    _value(doc["schemas"], {"$ref": schema_id}, value, "$", errors, response)
    return errors


def _value(schemas, prop, value, path, errors, response):
    if "$ref" in prop:
        _object(schemas, schemas[prop["$ref"]], value, path, errors, response)
        return
    kind = prop.get("type")
    if kind == "any":
        return
    if kind == "object":
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {value!r}")
        elif "properties" in prop:
            _object(schemas, prop, value, path, errors, response)
        elif "additionalProperties" in prop:
            for key, item in value.items():
                _value(schemas, prop["additionalProperties"], item, f"{path}.{key}",
                       errors, response)
        return
    if kind == "array":
        if not isinstance(value, list):
            errors.append(f"{path}: expected an array, got {value!r}")
            return
        for i, item in enumerate(value):
            _value(schemas, prop["items"], item, f"{path}[{i}]", errors, response)
        return
    problem = _scalar(kind, prop, value)
    if problem:
        errors.append(f"{path}: {problem}")


def _object(schemas, schema, value, path, errors, response):
    name = schema.get("id", "object")
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {name} object, got {value!r}")
        return
    props = schema.get("properties", {})
    for key, item in value.items():
        if key not in props:
            errors.append(f"{path}.{key}: unknown field of {name}")
            continue
        prop = props[key]
        if prop.get("readOnly") and not response:
            errors.append(f"{path}.{key}: output only in {name}, the server sets it")
        if prop.get("deprecated"):
            errors.append(f"{path}.{key}: deprecated in {name}")
        _value(schemas, prop, item, f"{path}.{key}", errors, response)
    if not response:
        for key, prop in props.items():
            if key not in value and prop.get("description", "").startswith("Required."):
                errors.append(f"{path}.{key}: required in {name}, missing")


def _scalar(kind, prop, value):
    fmt = prop.get("format")
    if kind == "string":
        if not isinstance(value, str):
            return f"expected a string{f' ({fmt})' if fmt else ''}, got {value!r}"
        if "enum" in prop and value not in prop["enum"]:
            return f"{value!r} is not one of {', '.join(prop['enum'])}"
        if fmt in ("int64", "uint64") and not _INT64.match(value):
            return f"{value!r} is not an {fmt} (decimal digits in a string)"
        if fmt == "google-duration" and not _DURATION.match(value):
            return f"{value!r} is not a duration such as '3600s'"
        if fmt == "google-datetime" and not _DATETIME.match(value):
            return f"{value!r} is not an RFC 3339 timestamp"
        if fmt == "byte":
            try:
                base64.b64decode(value, validate=True)
            except ValueError:
                return f"{value!r} is not base64"
        return None
    if kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"expected an integer ({fmt}), got {value!r}"
        low, high = UINT32 if fmt == "uint32" else INT32
        return None if low <= value <= high else f"{value} is out of {fmt} range"
    if kind == "number":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"expected a number, got {value!r}"
    if kind == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, got {value!r}"
    return f"unsupported schema type {kind!r}"
