#!/usr/bin/env python3
"""A TCP proxy in front of a real redis-server, for tests that need a connection to break at an
exact point (review tests of the replica-acknowledgement wait).

    redis_cut_proxy.py --target PORT [--cut-after-reply-to WORD ...]

Listens on a free 127.0.0.1 port and prints `PORT <n>` once. Every accepted connection is
forwarded to 127.0.0.1:TARGET, both ways. With `--cut-after-reply-to`, the first request chunk
from a client that carries every WORD as a whole argument (a RESP bulk string) arms a cut: the
server's first reply that is not an error (`NOSCRIPT` is followed by `EVAL`) is forwarded, and
the client connection (and its upstream) is closed right after it, as a server that kills its clients
(`CLIENT KILL`, a Sentinel reconfiguring a demoted master) would. `CUT` is printed when it
happens. Only one cut is ever made. Freeze the proxy with SIGSTOP to hold back what passes through
it (a replication link that stops delivering), SIGKILL it to drop what it held back.
"""

import argparse
import socket
import sys
import threading

lock = threading.Lock()
state = {"cut_done": False}


def pump_up(client, upstream, words, armed):
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            if words and all(word in data for word in words):
                with lock:
                    if not state["cut_done"]:
                        state["cut_done"] = True
                        armed.set()
            upstream.sendall(data)
    except OSError:
        pass
    try:
        upstream.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def pump_down(client, upstream, armed):
    try:
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            cut = armed.is_set() and not data.startswith(b"-")
            if cut:
                # Corked, the reply and the FIN leave in one segment: the client finds the
                # connection closed as soon as it has read the reply, before its next command.
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            client.sendall(data)
            if cut:
                print("CUT", flush=True)
                for sock in (client, upstream):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    sock.close()
                return
    except OSError:
        pass
    try:
        client.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def serve(listener, target, words):
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", target))
        except OSError:
            client.close()
            continue
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        armed = threading.Event()
        threading.Thread(target=pump_up, args=(client, upstream, words, armed), daemon=True).start()
        threading.Thread(target=pump_down, args=(client, upstream, armed), daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", type=int, required=True)
    parser.add_argument("--cut-after-reply-to", nargs="*", default=[])
    arguments = parser.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("PORT %d" % listener.getsockname()[1], flush=True)
    words = [word.encode() for word in arguments.cut_after_reply_to]
    serve(listener, arguments.target, [b"$%d\r\n%s\r\n" % (len(word), word) for word in words])


if __name__ == "__main__":
    sys.exit(main())
