"""A local stand-in for the Hugging Face Hub, speaking the part of its HTTP API that `huggingface_hub` uses to create
repos, push commits and download files (standard library only; bound to 127.0.0.1 on a free port).

The real client (and everything on top of it: `push_to_hub`, `from_pretrained`, the `Trainer`, `pipeline`) talks to it
through `HF_ENDPOINT`. Repos live in memory: each branch points at a commit, each commit holds a full snapshot of the
files. Endpoints:

- `POST /api/repos/create` (409 when the repo exists), `POST /api/validate-yaml`, `GET /api/whoami-v2`
- `POST /api/{type}s/{id}/preupload/{rev}` (every file uploaded "regular", inline in the commit)
- `POST /api/{type}s/{id}/commit/{rev}` (NDJSON: header, file, deletedFile, deletedFolder)
- `POST /api/{type}s/{id}/branch/{branch}`
- `GET /api/{type}s/{id}[/revision/{rev}]`, `GET /api/{type}s/{id}/tree/{rev}[/{path}]`
- `HEAD|GET /{id}/resolve/{rev}/{file}` (ETag, X-Repo-Commit; 404 with `X-Error-Code` RepoNotFound,
  RevisionNotFound or EntryNotFound)
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_SHA = re.compile(r"^[0-9a-f]{40}$")


def _git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class _Commit:
    oid: str
    files: dict[str, bytes]
    message: str
    parent: str | None


@dataclass
class _Repo:
    repo_id: str
    repo_type: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> _Commit | None:
        revision = unquote(revision)
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision in self.commits:
            return self.commits[revision]
        matches = [c for oid, c in self.commits.items() if len(revision) >= 7 and oid.startswith(revision)]
        return matches[0] if len(matches) == 1 else None


class _HubError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.error_code, self.extra = status, message, error_code, extra or {}


class LocalHub:
    """The in-memory Hub: repos and the HTTP server serving them.

    Example:

    ```python
    >>> hub = LocalHub().start()
    >>> hub.url  # point HF_ENDPOINT here
    >>> hub.read_file("org/model", "README.md")
    >>> hub.stop()
    ```"""

    def __init__(self):
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------------------------------------
    def start(self) -> LocalHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- inspection helpers for tests ---------------------------------------------------------------------------------
    def read_file(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        commit = self._repo(repo_type, repo_id).resolve(revision)
        if commit is None or path not in commit.files:
            raise KeyError(f"{path} not in {repo_id}@{revision}")
        return commit.files[path]

    def list_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        commit = self._repo(repo_type, repo_id).resolve(revision)
        if commit is None:
            raise KeyError(f"No revision {revision} in {repo_id}")
        return sorted(commit.files)

    def commit_messages(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        repo = self._repo(repo_type, repo_id)
        commit, messages = repo.resolve(revision), []
        while commit is not None:
            messages.append(commit.message)
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return messages

    # -- repository operations ----------------------------------------------------------------------------------------
    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise _HubError(404, f"Repository Not Found for url: {repo_type} {repo_id}.", "RepoNotFound")
        return repo

    def _commit(self, repo: _Repo, files: dict[str, bytes], message: str, parent: str | None) -> _Commit:
        seed = f"{repo.repo_id}{time.time_ns()}{len(repo.commits)}{message}".encode()
        oid = hashlib.sha1(seed).hexdigest()
        commit = _Commit(oid=oid, files=files, message=message, parent=parent)
        repo.commits[oid] = commit
        return commit

    def create_repo(self, repo_type: str, repo_id: str) -> _Repo:
        with self._lock:
            if (repo_type, repo_id) in self.repos:
                # Like the Hub, a conflict still names the repo's URL (create_repo(exist_ok=True) reads it).
                prefix = "" if repo_type == "model" else f"{repo_type}s/"
                raise _HubError(
                    409, "You already created this model repo", None, {"url": f"{self.url}/{prefix}{repo_id}"}
                )
            repo = _Repo(repo_id=repo_id, repo_type=repo_type)
            # A new Hub repo has one commit with a .gitattributes file on `main`.
            commit = self._commit(
                repo, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}, "initial commit", None
            )
            repo.branches["main"] = commit.oid
            self.repos[(repo_type, repo_id)] = repo
            return repo


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    # -- plumbing -----------------------------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False):
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict[str, str] | None = None):
        self._send(status, json.dumps(payload).encode(), headers)

    def _dispatch(self, method: str):
        url = urlsplit(self.path)
        self.hub.requests.append((method, url.path))
        try:
            body = self._body() if method == "POST" else b""
            self._route(method, url.path, parse_qs(url.query), body)
        except _HubError as error:
            headers = {"X-Error-Code": error.error_code} if error.error_code else {}
            headers["X-Error-Message"] = error.message
            self._send(
                error.status,
                json.dumps({"error": error.message, **error.extra}).encode(),
                headers,
                head=method == "HEAD",
            )

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    # -- routes -------------------------------------------------------------------------------------------------------
    def _route(self, method: str, path: str, query: dict, body: bytes):
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo(json.loads(body or b"{}"))
        if method == "POST" and path == "/api/validate-yaml":
            return self._json(200, {"errors": [], "warnings": []})
        if method == "GET" and path == "/api/whoami-v2":
            return self._json(200, {"type": "user", "name": "local-user", "orgs": [{"name": "org"}], "auth": {}})
        if len(parts) >= 4 and parts[0] == "api" and parts[1] in _REPO_TYPES:
            repo_type, repo_id, rest = _REPO_TYPES[parts[1]], f"{parts[2]}/{parts[3]}", parts[4:]
            repo = self.hub._repo(repo_type, repo_id)
            if method == "GET" and not rest:
                return self._repo_info(repo, "main")
            if method == "GET" and rest[0] == "revision" and len(rest) >= 2:
                return self._repo_info(repo, "/".join(rest[1:]))
            if method == "GET" and rest[0] == "tree" and len(rest) >= 2:
                return self._tree(repo, rest[1], "/".join(rest[2:]), query)
            if method == "POST" and rest[0] == "preupload" and len(rest) >= 2:
                return self._preupload(repo, json.loads(body or b"{}"))
            if method == "POST" and rest[0] == "commit" and len(rest) >= 2:
                return self._commit(repo, "/".join(rest[1:]), body)
            if method == "POST" and rest[0] == "branch" and len(rest) >= 2:
                return self._create_branch(repo, "/".join(rest[1:]), json.loads(body or b"{}"))
        if method in ("GET", "HEAD"):
            offset = 1 if parts and parts[0] in ("datasets", "spaces") else 0
            repo_type = _REPO_TYPES[parts[0]] if offset else "model"
            if len(parts) >= offset + 5 and parts[offset + 2] == "resolve":
                repo_id = f"{parts[offset]}/{parts[offset + 1]}"
                return self._resolve(
                    self.hub._repo(repo_type, repo_id),
                    parts[offset + 3],
                    "/".join(parts[offset + 4 :]),
                    head=method == "HEAD",
                )
        raise _HubError(404, f"Not handled by the local Hub: {method} {path}")

    def _create_repo(self, payload: dict):
        name, organization = payload.get("name"), payload.get("organization")
        repo_id = f"{organization}/{name}" if organization else f"local-user/{name}"
        repo_type = payload.get("type") or "model"
        self.hub.create_repo(repo_type, repo_id)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self._json(200, {"url": f"{self.hub.url}/{prefix}{repo_id}", "name": repo_id, "id": repo_id})

    def _commit_or_404(self, repo: _Repo, revision: str) -> _Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _repo_info(self, repo: _Repo, revision: str):
        from huggingface_hub import RepoCard

        commit = self._commit_or_404(repo, revision)
        info = {
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "sha": commit.oid,
            "private": False,
            "disabled": False,
            "gated": False,
            "siblings": [{"rfilename": name, "size": len(data)} for name, data in sorted(commit.files.items())],
            "tags": [],
        }
        if "README.md" in commit.files:
            card = RepoCard(commit.files["README.md"].decode("utf-8"))
            data = card.data.to_dict()
            info["cardData"] = data
            info["tags"] = list(data.get("tags") or [])
            for key in ("pipeline_tag", "library_name"):
                if data.get(key):
                    info[key] = data[key]
        self._json(200, info)

    def _tree(self, repo: _Repo, revision: str, folder: str, query: dict):
        commit = self._commit_or_404(repo, revision)
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        entries, folders = [], set()
        for name, data in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :]
            if "/" in rest and not recursive:
                folders.add(prefix + rest.split("/")[0])
                continue
            if "/" in rest:
                parents = rest.split("/")[:-1]
                folders.update(prefix + "/".join(parents[: i + 1]) for i in range(len(parents)))
            entries.append({"type": "file", "oid": _git_blob_oid(data), "size": len(data), "path": name})
        if prefix and not entries and not folders:
            raise _HubError(404, f"{folder} does not exist at {revision}", "EntryNotFound")
        dirs = [
            {"type": "directory", "oid": hashlib.sha1(f.encode()).hexdigest(), "size": 0, "path": f}
            for f in sorted(folders)
        ]
        self._json(200, dirs + entries)

    def _preupload(self, repo: _Repo, payload: dict):
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in payload.get("files", [])]
        self._json(200, {"files": files, "commitOid": repo.branches.get("main")})

    def _commit(self, repo: _Repo, revision: str, body: bytes):
        lines = [json.loads(line) for line in body.decode("utf-8").splitlines() if line.strip()]
        with self.hub._lock:
            branch = unquote(revision)
            if branch not in repo.branches:
                raise _HubError(404, f"Invalid rev id: {branch} (create the branch first)", "RevisionNotFound")
            parent = repo.commits[repo.branches[branch]]
            files = dict(parent.files)
            message = "commit"
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "header":
                    message = value.get("summary") or message
                    wanted_parent = value.get("parentCommit")
                    if wanted_parent and wanted_parent != parent.oid:
                        raise _HubError(412, f"parentCommit {wanted_parent} is not the head of {branch}")
                elif key == "file":
                    content = value.get("content", "")
                    data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                    files[value["path"]] = data
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    folder = value["path"].rstrip("/") + "/"
                    files = {k: v for k, v in files.items() if not k.startswith(folder)}
                elif key == "lfsFile":
                    raise _HubError(
                        400, "The local Hub takes every file inline (uploadMode 'regular'); got an LFS file."
                    )
                else:
                    raise _HubError(400, f"Unknown commit operation {key!r}")
            commit = self.hub._commit(repo, files, message, parent.oid)
            repo.branches[branch] = commit.oid
        self._json(
            200,
            {
                "commitUrl": f"{self.hub.url}/{repo.repo_id}/commit/{commit.oid}",
                "commitOid": commit.oid,
                "pullRequestUrl": None,
            },
        )

    def _create_branch(self, repo: _Repo, branch: str, payload: dict):
        with self.hub._lock:
            if branch in repo.branches:
                raise _HubError(409, f"Reference {branch} already exists")
            start = self._commit_or_404(repo, payload.get("startingPoint") or "main")
            repo.branches[branch] = start.oid
        self._json(200, {})

    def _resolve(self, repo: _Repo, revision: str, path: str, head: bool):
        commit = self._commit_or_404(repo, revision)
        if path not in commit.files:
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound")
        data = commit.files[path]
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{_git_blob_oid(data)}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
        }
        self._send(200, data, headers, head=head)


__all__ = ["LocalHub"]
