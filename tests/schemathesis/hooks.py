"""Schemathesis hooks for tests/schema.test.mjs."""
import itertools
import os

import schemathesis

# Not `random`: hypothesis seeds it afresh for every example.
_calls = itertools.count()

# Path parameters the document types as integers; the config's values (from
# the environment) arrive as strings.
_INTEGER_PATH_PARAMETERS = ("message_id", "version")


@schemathesis.hook
def before_call(context, case, kwargs):
    # Each call from its own address (documentation range), as the other
    # suites do: the per-address API limit is not what is tested here.
    n = next(_calls)
    case.headers = {**(case.headers or {}), "CF-Connecting-IP": f"198.18.{n // 256 % 256}.{n % 256}"}
    # A configured value replaces whatever was generated, also in a negative
    # case; as an integer it is seen to be valid, and not as "invalid data
    # accepted".
    # Sign-out as a person of its own: `everywhere: true` ends every session
    # of the caller, and the member's token would die mid-run (every later
    # call answering 401).
    headers = case.headers
    if case.operation.path == "/api/v1/auth/logout" and "Authorization" in headers:
        headers["Authorization"] = f"Bearer {os.environ['TESSERA_SIGNOUT_TOKEN']}"
    for name in _INTEGER_PATH_PARAMETERS:
        value = (case.path_parameters or {}).get(name)
        if isinstance(value, str) and value.isdigit():
            case.path_parameters[name] = int(value)
    # JSON Schema counts 309.0 as an integer; Tessera's API takes integers
    # as integer literals (docs/reliability.md), as serde does. A generated
    # integer-valued float is sent as the integer it stands for.
    if case.query:
        case.query = _integers(case.query)
    if isinstance(case.body, (dict, list)):
        case.body = _integers(case.body)


def _integers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers(v) for v in value]
    return value


# tus PATCH bodies are plain bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
