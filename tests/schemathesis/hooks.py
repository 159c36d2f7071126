"""Schemathesis hooks for tests/schema.test.mjs."""
import itertools

import schemathesis

# Not `random`: hypothesis seeds it afresh for every example.
_calls = itertools.count()


@schemathesis.hook
def before_call(context, case, kwargs):
    # Each call from its own address (documentation range), as the other
    # suites do: the per-address API limit is not what is tested here.
    n = next(_calls)
    case.headers = {**(case.headers or {}), "CF-Connecting-IP": f"198.18.{n // 256 % 256}.{n % 256}"}


# tus PATCH bodies are plain bytes under their own media type.
schemathesis.serializer.alias("application/offset+octet-stream", "application/octet-stream")
