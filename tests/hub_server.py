"""A loopback Hugging Face Hub for push tests: the HTTP API huggingface_hub uploads through.

It answers, for model repositories:

* ``POST /api/repos/create`` (the namespace is the token's user unless an
  ``organization`` is given);
* ``POST /api/models/{repo}/preupload/{rev}``: weights (``.safetensors``, ``.bin``,
  ``.onnx``, ...) and files over 10 MB go through LFS, the rest inline;
* ``POST /{repo}.git/info/lfs/objects/batch`` (basic transfer), the ``PUT`` of each
  object (its sha256 is checked) and the LFS ``verify`` call;
* ``POST /api/models/{repo}/commit/{rev}`` with the NDJSON payload: a header line,
  then ``file`` (base64 content) and ``lfsFile`` (oid of an uploaded object) lines;
* ``POST /api/validate-yaml`` (the README.md metadata check before a commit);
* ``GET /api/whoami-v2``.

Every call except the LFS object ``PUT`` (which the client sends to a pre-signed
URL without credentials) must carry ``Authorization: Bearer <token>``. What
arrived is kept in :attr:`LoopbackHub.repos` (``{repo_id: {path: bytes}}``), and
every request line and body in :attr:`LoopbackHub.requests` for the tests' checks.
Xet storage is not implemented: tests set ``HF_HUB_DISABLE_XET`` so the client
uses LFS, which the Hub also accepts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LFS_SUFFIXES = (".safetensors", ".bin", ".onnx", ".pt", ".pth", ".msgpack", ".h5", ".ckpt")
LFS_MIN_BYTES = 10 * 1024 * 1024


@dataclass
class Commit:
    repo_id: str
    revision: str
    summary: str
    oid: str
    paths: list[str]


@dataclass
class LoopbackHub:
    """State of the loopback Hub; :meth:`start` serves it on 127.0.0.1."""

    token: str
    user: str = "tester"
    repos: dict[str, dict[str, bytes]] = field(default_factory=dict)
    private: dict[str, bool] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def start(self) -> LoopbackHub:
        hub = self

        class Handler(_Handler):
            state = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def lfs_paths(self) -> set[str]:
        """Paths committed as ``lfsFile`` lines."""
        return {
            line["value"]["path"]
            for r in self.requests
            if "/commit/" in r["path"] and r["method"] == "POST"
            for line in r["ndjson"]
            if line["key"] == "lfsFile"
        }


class _Handler(BaseHTTPRequestHandler):
    state: LoopbackHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    # --------------------------------------------------------------------- plumbing
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reply(self, status: int, payload: Any = None) -> None:
        body = json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.state.token}":
            return True
        self._reply(401, {"error": "Invalid credentials in Authorization header"})
        return False

    def _record(self, body: bytes) -> dict[str, Any]:
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body,
            "ndjson": [],
        }
        self.state.requests.append(entry)
        return entry

    # ---------------------------------------------------------------------- routes
    def do_GET(self) -> None:
        self._record(b"")
        if self.path.startswith("/api/whoami-v2"):
            if self._authorized():
                self._reply(200, {"type": "user", "name": self.state.user, "orgs": []})
            return
        self._reply(404, {"error": f"loopback hub: no route for GET {self.path}"})

    def do_PUT(self) -> None:
        body = self._body()
        self._record(body)
        match = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", self.path)
        if match is None:
            self._reply(404, {"error": f"loopback hub: no route for PUT {self.path}"})
            return
        oid = match.group(1)
        if hashlib.sha256(body).hexdigest() != oid:
            self._reply(400, {"error": "sha256 of the uploaded object does not match its oid"})
            return
        self.state.lfs_objects[oid] = body
        self._reply(200, {})

    def do_POST(self) -> None:
        body = self._body()
        entry = self._record(body)
        if not self._authorized():
            return
        path = self.path.split("?", 1)[0]
        if path == "/api/repos/create":
            self._create_repo(json.loads(body))
        elif path == "/api/validate-yaml":
            self._validate_yaml(json.loads(body)["content"])
        elif m := re.fullmatch(r"/api/models/(.+)/preupload/([^/]+)", path):
            self._preupload(m.group(1), json.loads(body))
        elif m := re.fullmatch(r"/(.+)\.git/info/lfs/objects/batch", path):
            self._lfs_batch(m.group(1), json.loads(body))
        elif path == "/lfs-verify":
            request = json.loads(body)
            ok = request["oid"] in self.state.lfs_objects
            self._reply(200 if ok else 404, {} if ok else {"error": "object not uploaded"})
        elif m := re.fullmatch(r"/api/models/(.+)/commit/([^/]+)", path):
            entry["ndjson"] = [json.loads(line) for line in body.splitlines() if line.strip()]
            self._commit(m.group(1), m.group(2), entry["ndjson"])
        else:
            self._reply(404, {"error": f"loopback hub: no route for POST {path}"})

    def _create_repo(self, request: dict[str, Any]) -> None:
        if request.get("type", "model") not in (None, "model"):
            self._reply(400, {"error": "loopback hub: only model repositories"})
            return
        namespace = request.get("organization") or self.state.user
        repo_id = f"{namespace}/{request['name']}"
        self.state.repos.setdefault(repo_id, {})
        # huggingface_hub < 1.0 sends "private", later releases "visibility".
        visibility = request.get("visibility")
        self.state.private[repo_id] = bool(request.get("private")) or visibility == "private"
        self._reply(200, {"url": f"{self.state.url}/{repo_id}", "name": repo_id})

    def _validate_yaml(self, content: str) -> None:
        """The Hub's README.md check: YAML front matter that is a mapping, a sane model-index."""
        import yaml

        errors = []
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        metadata = yaml.safe_load(match.group(1)) if match else None
        if not isinstance(metadata, dict):
            errors.append("README.md must start with YAML metadata between --- lines")
        else:
            for entry in metadata.get("model-index") or []:
                for result in entry.get("results", []):
                    for metric in result.get("metrics", []):
                        if not isinstance(metric.get("value"), (int, float)):
                            errors.append(f"model-index metric {metric.get('type')} has no number")
        self._reply(
            400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": []}
        )

    def _repo(self, repo_id: str) -> dict[str, bytes] | None:
        files = self.state.repos.get(repo_id)
        if files is None:
            self._reply(404, {"error": f"Repository not found: {repo_id}"})
        return files

    def _preupload(self, repo_id: str, request: dict[str, Any]) -> None:
        if self._repo(repo_id) is None:
            return
        files = [
            {
                "path": f["path"],
                "uploadMode": "lfs"
                if f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_MIN_BYTES
                else "regular",
                "shouldIgnore": False,
            }
            for f in request["files"]
        ]
        self._reply(200, {"files": files, "commitOid": None})

    def _lfs_batch(self, repo_id: str, request: dict[str, Any]) -> None:
        if self._repo(repo_id) is None:
            return
        objects = []
        for obj in request["objects"]:
            if obj["oid"] in self.state.lfs_objects:
                objects.append({"oid": obj["oid"], "size": obj["size"]})  # already stored
                continue
            objects.append(
                {
                    "oid": obj["oid"],
                    "size": obj["size"],
                    "authenticated": True,
                    "actions": {
                        "upload": {"href": f"{self.state.url}/lfs-upload/{obj['oid']}"},
                        "verify": {"href": f"{self.state.url}/lfs-verify"},
                    },
                }
            )
        self._reply(200, {"transfer": "basic", "objects": objects})

    def _commit(self, repo_id: str, revision: str, lines: list[dict[str, Any]]) -> None:
        files = self._repo(repo_id)
        if files is None:
            return
        if not lines or lines[0]["key"] != "header":
            self._reply(400, {"error": "the commit payload must start with a header line"})
            return
        staged: dict[str, bytes] = {}
        for line in lines[1:]:
            value = line["value"]
            if line["key"] == "file":
                staged[value["path"]] = base64.b64decode(value["content"])
            elif line["key"] == "lfsFile":
                content = self.state.lfs_objects.get(value["oid"])
                if content is None or len(content) != value["size"]:
                    self._reply(422, {"error": f"LFS object of {value['path']} was not uploaded"})
                    return
                staged[value["path"]] = content
            else:
                self._reply(400, {"error": f"loopback hub: unsupported commit line {line['key']}"})
                return
        files.update(staged)
        oid = hashlib.sha1(json.dumps(lines, sort_keys=True).encode()).hexdigest()
        self.state.commits.append(
            Commit(repo_id, revision, lines[0]["value"]["summary"], oid, sorted(staged))
        )
        self._reply(
            200,
            {
                "commitUrl": f"{self.state.url}/{repo_id}/commit/{oid}",
                "commitOid": oid,
                "pullRequestUrl": None,
            },
        )
