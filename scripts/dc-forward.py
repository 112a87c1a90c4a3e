#!/usr/bin/env python3
"""TCP relay from the host's loopback into the test DC's private network namespace.

Samba hard-codes its LDAP ports (389/636), so scripts/test-dc.sh runs it inside its own
network namespace and starts this relay:

    dc-forward.py --netns-pid PID 127.0.0.1:3389=127.0.0.1:389 127.0.0.1:3390=127.0.0.1:636

The listening sockets are bound in the caller's namespace first; then the process joins
the namespace of PID (setns), so every upstream connection is made inside it. It relays
bytes only, so plain LDAP, StartTLS and LDAPS all pass through unchanged. Stdlib only.
"""

import argparse
import ctypes
import os
import signal
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000


def relay(src, dst):
    try:
        while True:
            chunk = src.recv(1 << 16)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def serve_client(client, target):
    try:
        upstream = socket.create_connection(target, timeout=10)
    except OSError as e:
        print(f"dc-forward: cannot reach {target[0]}:{target[1]}: {e}", file=sys.stderr, flush=True)
        client.close()
        return
    upstream.settimeout(None)
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=relay, args=(upstream, client), daemon=True)
    back.start()
    relay(client, upstream)
    back.join()
    client.close()
    upstream.close()


def accept_loop(listener, target):
    while True:
        client, _ = listener.accept()
        threading.Thread(target=serve_client, args=(client, target), daemon=True).start()


def endpoint(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--netns-pid", type=int, required=True)
    ap.add_argument("mappings", nargs="+", metavar="LISTEN=TARGET")
    a = ap.parse_args()

    pairs = []
    for m in a.mappings:
        listen, target = m.split("=", 1)
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(endpoint(listen))
        ls.listen(128)
        pairs.append((ls, endpoint(target)))

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{a.netns_pid}/ns/net", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        sys.exit(f"dc-forward: setns failed: {os.strerror(ctypes.get_errno())}")
    os.close(fd)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    threads = [threading.Thread(target=accept_loop, args=p, daemon=True) for p in pairs]
    for t in threads:
        t.start()
    print("dc-forward: ready " + " ".join(a.mappings), flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
