"""Redis unreachable: keyed requests are still served (keys checked in the database, limits
counted in this replica), revocation still holds, and /health says the server is degraded."""

from __future__ import annotations

from tests.accounts.conftest import Admin, AppFactory, sdk_for

DOWN = "redis://127.0.0.1:1/0"  # loopback, nothing listens there


def test_keyed_requests_survive_an_unreachable_redis(make_app: AppFactory) -> None:
    client = make_app(redis_url=DOWN)
    admin = Admin(client)
    project = admin.project("p-down")
    key_id, key = admin.key(project)
    sdk = sdk_for(client, key)
    for _ in range(3):  # the second and third use the key cache, which asks Redis first
        reply = sdk.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
    health = client.get("/health").json()
    assert health["status"] == "ok" and "redis" in health["degraded"][0]
    admin.revoke(project, key_id)
    refused = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4.1", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 401
