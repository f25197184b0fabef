"""`python -m qunzhu openapi`: the platform's merged OpenAPI document, stable bytes, nothing written under ./data."""

from __future__ import annotations

import json

from qunzhu.cli import main


def test_the_document_merges_the_gateway_and_every_service(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # a data directory left behind would show here
    main(["openapi"])
    out = capsys.readouterr().out
    document = json.loads(out)

    assert out == json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert "x-unavailable-services" not in document
    paths = document["paths"]
    for path in ("/api/v1/auth/token", "/webhooks/chat/{connector_id}",  # the gateway's own
                 "/api/v1/membership/communities/{community_id}/plans",
                 "/api/v1/content/communities/{community_id}/posts/{post_id}",
                 "/api/v1/engagement/communities/{community_id}/leaderboard"):
        assert path in paths, path
    assert "membership__PlanCreate" in document["components"]["schemas"]
    assert list(tmp_path.iterdir()) == []


def test_output_file(tmp_path, capsys):
    target = tmp_path / "openapi.json"
    main(["openapi", "--output", str(target)])
    assert capsys.readouterr().out == ""
    assert json.loads(target.read_text(encoding="utf-8"))["openapi"].startswith("3.")
