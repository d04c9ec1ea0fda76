#!/usr/bin/env python3
"""Make tests/fixtures/hf-cache: a Hugging Face cache laid out by huggingface_hub itself.

`snapshot_download` fetches a repository `mgrpo-test/tiny` from a local stand-in for the Hub
(this script's HTTP server, answering the calls `snapshot_download` makes: the repository info,
its file tree, and each file, safetensors as LFS files as the Hub stores them), so the cache is exactly what a user who downloaded a model holds:
`models--mgrpo-test--tiny/{blobs, refs, snapshots}`, the snapshots' files relative symlinks
into `blobs/`. Two revisions:
  - `main`: the copy-task fixture (a Qwen2);
  - `v1` (a branch): the llama-bias fixture (a Llama), so a test sees which revision it got.
Nothing is downloaded from the internet.

    .venv/bin/python scripts/make_hub_cache_fixture.py
"""
import hashlib
import http.server
import json
import os
import shutil
import threading

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
OUT = os.path.join(ROOT, "hf-cache")
REPO = "mgrpo-test/tiny"
REVISIONS = {
    "main": ("copy-task", ["config.json", "model.safetensors", "tokenizer.json"]),
    "v1": ("llama-bias-untied-bf16-t5", ["config.json", "model.safetensors"]),
}


def commit_of(revision):
    source, files = REVISIONS[revision]
    h = hashlib.sha1(revision.encode())
    for f in files:
        h.update(open(os.path.join(ROOT, source, f), "rb").read())
    return h.hexdigest()


COMMITS = {rev: commit_of(rev) for rev in REVISIONS}
BY_COMMIT = {c: rev for rev, c in COMMITS.items()}


def git_oid(body):
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()


def is_lfs(name):
    return name.endswith(".safetensors")


def etag(name, body):
    return hashlib.sha256(body).hexdigest() if is_lfs(name) else git_oid(body)


class Hub(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def revision(self, rev):
        return BY_COMMIT.get(rev, rev)

    def reply(self, body, headers, send_body):
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def route(self, send_body):
        path = self.path.split("?")[0]
        api = f"/api/models/{REPO}/revision/"
        if path.startswith(api):
            rev = self.revision(path[len(api):])
            source, files = REVISIONS[rev]
            body = json.dumps({"id": REPO, "sha": COMMITS[rev],
                               "siblings": [{"rfilename": f} for f in files]}).encode()
            return self.reply(body, {"Content-Type": "application/json"}, send_body)
        tree = f"/api/models/{REPO}/tree/"
        if path.startswith(tree):
            source, files = REVISIONS[self.revision(path[len(tree):])]
            entries = []
            for f in files:
                body = open(os.path.join(ROOT, source, f), "rb").read()
                entry = {"type": "file", "path": f, "size": len(body), "oid": git_oid(body)}
                if is_lfs(f):
                    entry["lfs"] = {"oid": etag(f, body), "size": len(body), "pointerSize": 134}
                entries.append(entry)
            return self.reply(json.dumps(entries).encode(), {"Content-Type": "application/json"},
                              send_body)
        prefix = f"/{REPO}/resolve/"
        if path.startswith(prefix):
            rev, name = path[len(prefix):].split("/", 1)
            rev = self.revision(rev)
            source, _ = REVISIONS[rev]
            body = open(os.path.join(ROOT, source, name), "rb").read()
            return self.reply(body, {"X-Repo-Commit": COMMITS[rev], "ETag": f'"{etag(name, body)}"'},
                              send_body)
        self.send_error(404)

    def do_GET(self):
        self.route(True)

    def do_HEAD(self):
        self.route(False)


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    from huggingface_hub import scan_cache_dir, snapshot_download  # reads HF_ENDPOINT on import

    shutil.rmtree(OUT, ignore_errors=True)
    for rev in REVISIONS:
        path = snapshot_download(REPO, revision=rev, cache_dir=OUT)
        print(f"{REPO}@{rev} -> {os.path.relpath(path, OUT)}")
    for repo in scan_cache_dir(OUT).repos:
        for r in repo.revisions:
            print(repo.repo_id, sorted(r.refs), r.commit_hash, sorted(f.file_name for f in r.files))
    server.shutdown()


if __name__ == "__main__":
    main()
