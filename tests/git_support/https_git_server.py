#!/usr/bin/env python3
"""A git smart-HTTP server over TLS for tests: `git http-backend` behind Basic auth.

Usage: https_git_server.py CERT KEY PROJECT_ROOT USER TOKEN
Listens on 127.0.0.1 (a free port, printed as "listening PORT" on stdout), answers 401
with a Basic challenge unless the request carries USER:TOKEN, and serves the bare
repositories under PROJECT_ROOT read-only. Each request's outcome is printed on stdout
("auth ok", "auth missing", "auth wrong") so the test can see what the client sent
without the server ever echoing a credential.
"""

import base64
import http.server
import os
import ssl
import subprocess
import sys


def main():
    cert, key, root, user, token = sys.argv[1:6]
    expected = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def body(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length", "0")))

        def reply(self, status, headers, payload):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def serve(self):
            payload = self.body() if self.command == "POST" else b""
            got = self.headers.get("Authorization")
            if got != expected:
                print("auth missing" if got is None else "auth wrong", flush=True)
                self.reply(401, [("WWW-Authenticate", 'Basic realm="git"')], b"")
                return
            print("auth ok", flush=True)
            path, _, query = self.path.partition("?")
            env = dict(
                os.environ,
                GIT_PROJECT_ROOT=root,
                GIT_HTTP_EXPORT_ALL="1",
                REQUEST_METHOD=self.command,
                PATH_INFO=path,
                QUERY_STRING=query,
                CONTENT_TYPE=self.headers.get("Content-Type", ""),
                CONTENT_LENGTH=str(len(payload)),
                REMOTE_USER=user,
                REMOTE_ADDR="127.0.0.1",
            )
            out = subprocess.run(
                ["git", "http-backend"], input=payload, env=env, capture_output=True
            ).stdout
            head, _, rest = out.partition(b"\r\n\r\n")
            if not rest and b"\n\n" in out:
                head, _, rest = out.partition(b"\n\n")
            status, headers = 200, []
            for line in head.decode().splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.reply(status, headers, rest)

        do_GET = serve
        do_POST = serve

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
