"""JSON-RPC: every method of the reference's openrpc.json is served, and any parameters, however
wrong, give a JSON-RPC answer (result or error object), never an exception or an HTTP error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from api_pair import Pair
from mycelium.api.facade import NodeApi
from mycelium.api.jsonrpc import INTERNAL_ERROR, Dispatcher, openrpc_document

SHARED = Path("/work/shared/reference/openrpc.json")

BAD_PARAMS: list[Any] = [
    None,
    [],
    {},
    "text",
    7,
    [None],
    [True, False, None, 1],
    [{"a": 1}],
    [["nested"]],
    ["tcp://[::1]:notaport"],
    ["400::1"],
    [-1, "x"],
    {"endpoint": 5, "topic": [], "timeout": "soon", "peek": "yes"},
    {"id": "zz", "mycelium_ip": None, "message": {"dst": {}}},
]


def test_shipped_document_is_the_reference_one() -> None:
    if not SHARED.exists():
        pytest.skip("shared reference folder not on this machine")
    assert openrpc_document() == json.loads(SHARED.read_text())


async def test_every_documented_method_is_served(pair: Pair) -> None:
    served = set(Dispatcher(NodeApi(pair.a)).methods)
    documented = {m["name"] for m in openrpc_document()["methods"]}
    assert documented - served == set()
    assert served - documented == {"rpc.discover"}


async def test_wrong_parameters_never_raise(pair: Pair) -> None:
    dispatcher = Dispatcher(NodeApi(pair.a))
    for method in sorted(dispatcher.methods):
        for params in BAD_PARAMS:
            request = {"jsonrpc": "2.0", "id": 3, "method": method, "params": params}
            async with asyncio.timeout(10):
                reply = await dispatcher.call(request)
            assert reply is not None and reply["id"] == 3
            assert ("result" in reply) != ("error" in reply), (method, params, reply)
            if "error" in reply:
                assert isinstance(reply["error"]["code"], int)
                assert reply["error"]["code"] != INTERNAL_ERROR, (method, params, reply)
            json.dumps(reply)  # serialisable as it stands


async def test_a_failing_method_is_an_internal_error(pair: Pair) -> None:
    dispatcher = Dispatcher(NodeApi(pair.a))

    def broken(params: Any) -> Any:
        raise RuntimeError("bug")

    dispatcher.methods["getInfo"] = broken
    reply = await dispatcher.call({"jsonrpc": "2.0", "id": 1, "method": "getInfo"})
    assert reply is not None and reply["error"]["code"] == INTERNAL_ERROR
    assert await dispatcher.call({"jsonrpc": "2.0", "method": "getInfo"}) is None


async def test_server_errors_are_named_as_jsonrpsee_names_them(pair: Pair) -> None:
    dispatcher = Dispatcher(NodeApi(pair.a))
    request = {"jsonrpc": "2.0", "id": 1, "method": "addPeer", "params": ["bogus"]}
    reply = await dispatcher.call(request)
    assert reply is not None
    assert reply["error"]["code"] == -32009
    assert reply["error"]["message"] == "Server error"
    assert isinstance(reply["error"]["data"], str) and reply["error"]["data"]
    missing = await dispatcher.call({"jsonrpc": "2.0", "id": 2, "method": "nope"})
    assert missing is not None and missing["error"]["message"] == "Method not found"
