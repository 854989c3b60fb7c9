"""A served index updated on disk (`tessera add`, `delete`, `sync`) is reopened by the running
service: searches see the new version without a restart, and a version that cannot be opened
leaves the served one in place."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from fastapi.testclient import TestClient

from tessera.indexing.updates import add_documents, delete_documents
from tessera.serve import ServeSettings, create_app
from tests.serve.conftest import wait_ready

QUERY = "ultrasonic flutter of a sandwich panel"


def wait_for(check, timeout: float = 20.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_an_index_updated_on_disk_is_served_without_a_restart(serve_indexes: dict, tmp_path: Path) -> None:
    index = tmp_path / "bm25"
    shutil.copytree(serve_indexes["head-bm25"], index)
    extra = tmp_path / "extra.jsonl"
    extra.write_text(
        json.dumps({"_id": "new-1", "title": "", "text": QUERY + " measured in a wind tunnel"}) + "\n"
    )
    settings = ServeSettings(indexes={"bm25": str(index)}, reload_seconds=0.1)
    with TestClient(create_app(settings)) as client:
        wait_ready(client.get)

        def top() -> str:
            return client.get("/v1/search", params={"q": QUERY, "k": 1}).json()["results"][0]["hits"][0][
                "doc_id"
            ]

        before = top()
        assert before != "new-1"
        add_documents(index, extra, show_progress=False)
        assert wait_for(lambda: top() == "new-1")
        assert client.get("/v1/indexes").json()["indexes"][0]["documents"] == 151
        delete_documents(index, ["new-1"])
        assert wait_for(lambda: top() == before)
        (index / "manifest.json").write_text("{not json")  # a version that cannot be opened
        time.sleep(0.5)
        assert top() == before and client.get("/health").json()["status"] == "ok"  # the served one stays


def test_reloading_can_be_turned_off(serve_indexes: dict, tmp_path: Path) -> None:
    index = tmp_path / "bm25"
    shutil.copytree(serve_indexes["head-bm25"], index)
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"_id": "new-1", "title": "", "text": QUERY}) + "\n")
    with TestClient(create_app(ServeSettings(indexes={"bm25": str(index)}, reload_seconds=0))) as client:
        wait_ready(client.get)
        add_documents(index, extra, show_progress=False)
        time.sleep(0.5)
        assert client.get("/v1/indexes").json()["indexes"][0]["documents"] == 150
