"""Models, health and the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

from serverroom.app import create_app
from tests.conftest import fake_settings


def test_list_and_retrieve(sdk: openai.OpenAI) -> None:
    ids = [m.id for m in sdk.models.list()]
    for name in (
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "o3",
        "smollm2-135m-instruct",
    ):
        assert name in ids
    model = sdk.models.retrieve("gpt-4o")
    assert model.object == "model" and model.id == "gpt-4o"
    with pytest.raises(openai.NotFoundError) as info:
        sdk.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"


def test_user_catalog_adds_models_with_slashes(tmp_path: Path) -> None:
    catalog = tmp_path / "models.toml"
    catalog.write_text(
        '[[model]]\nid = "org/tiny:v1"\nalias_of = "smollm2-135m-instruct"\n'
        "pricing = { input = 1.0, cached_input = 0.5, output = 2.0 }\n"
    )
    with TestClient(create_app(fake_settings(tmp_path, catalog_file=catalog))) as client:
        sdk = openai.OpenAI(api_key="k", base_url="http://testserver/v1", http_client=client)
        assert sdk.models.retrieve("org/tiny:v1").id == "org/tiny:v1"
        reply = sdk.chat.completions.create(
            model="org/tiny:v1", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.model == "org/tiny:v1"


def test_health_and_docs(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    assert client.get("/docs").status_code == 200
    assert "/v1/chat/completions" in client.get("/openapi.json").json()["paths"]


def test_the_openapi_schema_documents_what_the_server_sends(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "422" not in json.dumps(spec["paths"])  # validation is the platform's 400
    operation = spec["paths"]["/v1/chat/completions"]["post"]
    assert {"400", "401", "404", "429", "503"} <= set(operation["responses"])
    assert operation["security"] == [{"ApiKey": []}]
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    assert "security" not in spec["paths"]["/health"]["get"]
