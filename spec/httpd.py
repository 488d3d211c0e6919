#!/usr/bin/env python3
"""spec/httpd.py PORTFILE LOGFILE [TTL]: a tiny HTTP/1.1 server on 127.0.0.1 for the
core's lifecycle specs (spec/24-core-safety_spec.lua).

It binds a port the kernel chooses, writes it to PORTFILE, and answers every request on
its own thread (keep-alive). Each request's head is appended to LOGFILE as it arrived,
followed by a line "-- body N": what a spec reads to see what went on the wire.

  /echo       answers 200 with the request's body
  /slow       answers after 3 seconds
  /big/N      answers 200 with a body of N bytes
  /headers/N  answers 200 with N more headers (X-Header-0 .. X-Header-<N-1>)
  /trickle    answers 200 with a Content-Length of 10 MB and then stops sending
  anything    answers 200 "ok N" (N: the request body's length)

It exits after TTL seconds (default 120)."""
import os
import socket
import sys
import threading
import time

PORTFILE, LOGFILE = sys.argv[1], sys.argv[2]
TTL = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
LOCK = threading.Lock()


def log(text):
    with LOCK, open(LOGFILE, "ab") as f:
        f.write(text)


def answer(conn, body, status="200 OK", length=None, extra=""):
    head = "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n" % (
        status, len(body) if length is None else length, extra)
    conn.sendall(head.encode() + body)


def serve(conn):
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(buf) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            body, buf = buf[:length], buf[length:]
            log(head + b"\r\n-- body %d\n" % length)
            target = head.split(b" ")[1] if b" " in head else b"/"
            if target == b"/echo":
                answer(conn, body)
            elif target == b"/slow":
                time.sleep(3)
                answer(conn, b"slow")
            elif target.startswith(b"/headers/"):
                n = int(target[9:])
                answer(conn, b"h", extra="".join(
                    "X-Header-%d: value %d %s\r\n" % (i, i, "v" * 40) for i in range(n)))
            elif target.startswith(b"/big/"):
                answer(conn, b"x" * int(target[5:]))
            elif target == b"/trickle":
                answer(conn, b"x" * 1000, length=10 * 1000 * 1000)
                time.sleep(30)
                return
            else:
                answer(conn, b"ok %d" % length)
    except OSError:
        pass
    finally:
        conn.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    s.settimeout(0.5)
    with open(PORTFILE + ".tmp", "w") as f:
        f.write(str(s.getsockname()[1]))
    os.rename(PORTFILE + ".tmp", PORTFILE)
    end = time.time() + TTL
    while time.time() < end:
        try:
            conn, _ = s.accept()
        except socket.timeout:
            continue
        conn.settimeout(None)
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
