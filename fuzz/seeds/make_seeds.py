#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/).

Real client bytes where a client is at hand: psql's startup packets, SSLRequest and
SCRAM-SHA-256 messages, recorded by a fake server that plays the authentication exchange;
psycopg's extended-protocol messages, recorded by a proxy in front of a PostgreSQL server
(trust authentication on 127.0.0.1:5432, as on the project's machines). The rest is built
byte by byte after the protocol documentation. Deterministic except for the SCRAM nonces.

    python3 fuzz/seeds/make_seeds.py            # rewrites fuzz/corpus/*/seed-*
"""
import base64
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(os.path.dirname(HERE), "corpus")
PASSWORD = "correct horse battery staple"
DB = "IKHOSPITAL_DW"

SSL_REQUEST = struct.pack(">ii", 8, 80877103)
GSSENC_REQUEST = struct.pack(">ii", 8, 80877104)


def frame(tag, body):
    return tag + struct.pack(">i", len(body) + 4) + body


def cstr(s):
    return s.encode() + b"\0"


def startup(params, version=196608):
    body = struct.pack(">i", version) + b"".join(cstr(k) + cstr(v) for k, v in params) + b"\0"
    return struct.pack(">i", len(body) + 4) + body


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- fake server recording psql -------------------------------------------------------------

def read_exact(conn, n):
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def read_startup(conn, log):
    head = read_exact(conn, 4)
    (length,) = struct.unpack(">i", head)
    body = read_exact(conn, length - 4)
    log.append(head + body)
    return struct.unpack(">i", body[:4])[0]


def read_message(conn, log):
    head = read_exact(conn, 5)
    (length,) = struct.unpack(">i", head[1:])
    body = read_exact(conn, length - 4)
    log.append(head + body)
    return head[:1], body


def fake_server(method, ssl_answer=b"N"):
    """Listens once; plays `method` ('scram' or 'cleartext'); returns (port, thread, log)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    log = []

    def serve():
        conn, _ = listener.accept()
        try:
            code = read_startup(conn, log)
            while code in (80877103, 80877104):
                conn.sendall(ssl_answer if code == 80877103 else b"N")
                code = read_startup(conn, log)
            if method == "cleartext":
                conn.sendall(frame(b"R", struct.pack(">i", 3)))
                read_message(conn, log)
            else:
                conn.sendall(frame(b"R", struct.pack(">i", 10) + cstr("SCRAM-SHA-256") + b"\0"))
                _, body = read_message(conn, log)
                mech_end = body.index(b"\0")
                (n,) = struct.unpack(">i", body[mech_end + 1:mech_end + 5])
                client_first = body[mech_end + 5:mech_end + 5 + n].decode()
                nonce = client_first.split("r=", 1)[1]
                salt = base64.b64encode(b"lakehouse-fuzz-s").decode()
                server_first = f"r={nonce}fuzzservernonce,s={salt},i=4096"
                conn.sendall(frame(b"R", struct.pack(">i", 11) + server_first.encode()))
                read_message(conn, log)
        except (EOFError, ConnectionError, ValueError):
            pass
        finally:
            conn.close()
            listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread, log


def record_psql(user, method, sslmode, extra=""):
    if not shutil.which("psql"):
        return None
    port, thread, log = fake_server(method)
    env = dict(os.environ, PGPASSWORD=PASSWORD, PGCONNECT_TIMEOUT="5")
    dsn = f"host=127.0.0.1 port={port} user={user} dbname={DB} sslmode={sslmode} {extra}"
    subprocess.run(["psql", dsn, "-c", "select 1"], env=env, capture_output=True, timeout=20)
    thread.join(10)
    return b"".join(log)


# ---- proxy recording psycopg ----------------------------------------------------------------

def record_psycopg(script):
    """Runs `script(conninfo)` through a proxy to PostgreSQL on 127.0.0.1:5432; returns the
    client's bytes after its StartupMessage."""
    try:
        import psycopg  # noqa: F401
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except Exception:
        return None
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    sent = []

    def pump(src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    sent.append(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def serve():
        client, _ = listener.accept()
        upstream = socket.create_connection(("127.0.0.1", 5432))
        a = threading.Thread(target=pump, args=(client, upstream, True))
        b = threading.Thread(target=pump, args=(upstream, client, False))
        a.start()
        b.start()
        a.join()
        b.join()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    script(f"host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable")
    thread.join(10)
    data = b"".join(sent)
    (length,) = struct.unpack(">i", data[:4])
    return data[length:]


def messages(data):
    out = []
    while len(data) >= 5:
        (length,) = struct.unpack(">i", data[1:5])
        out.append((data[:1], data[5:1 + length]))
        data = data[1 + length:]
    return out


def tlv(msgs):
    """The `extended` target's input format: tag, u16 length, body."""
    return b"".join(tag + struct.pack(">H", len(body)) + body for tag, body in msgs)


def raw(data):
    """A record sent as is (tag 0)."""
    return b"\0" + struct.pack(">H", len(data)) + data


# ---- extended protocol by hand ----------------------------------------------------------------

def parse(name, query, types=()):
    return (b"P", cstr(name) + cstr(query) + struct.pack(">h", len(types))
            + b"".join(struct.pack(">i", t) for t in types))


def bind(portal, stmt, params, formats=(), result_formats=()):
    body = cstr(portal) + cstr(stmt) + struct.pack(">h", len(formats))
    body += b"".join(struct.pack(">h", f) for f in formats)
    body += struct.pack(">h", len(params))
    for p in params:
        body += struct.pack(">i", -1) if p is None else struct.pack(">i", len(p)) + p
    body += struct.pack(">h", len(result_formats)) + b"".join(struct.pack(">h", f) for f in result_formats)
    return (b"B", body)


def describe(kind, name):
    return (b"D", kind + cstr(name))


def execute(portal, max_rows=0):
    return (b"E", cstr(portal) + struct.pack(">i", max_rows))


def close(kind, name):
    return (b"C", kind + cstr(name))


SYNC = (b"S", b"")
FLUSH = (b"H", b"")


def query(sql):
    return (b"Q", cstr(sql))


def main():
    random.seed(20261204)
    for d in ("startup", "extended", "statements"):
        p = os.path.join(CORPUS, d)
        os.makedirs(p, exist_ok=True)
        for f in os.listdir(p):
            if f.startswith("seed-"):
                os.remove(os.path.join(p, f))

    # startup: real psql bytes.
    for name, args in {
        "psql-scram-bob": ("bob", "scram", "disable"),
        "psql-sslrequest-scram-alice": ("alice", "scram", "prefer"),
        "psql-cleartext-dave": ("dave", "cleartext", "disable"),
        "psql-options-carol": ("carol", "scram", "disable",
                               "options='-c statement_timeout=1s -c search_path=dbo' application_name=fuzz"),
    }.items():
        data = record_psql(*args)
        if data:
            write("startup", name, data)
    # startup: by hand.
    dave = startup([("user", "dave"), ("database", DB)])
    password = frame(b"p", cstr(PASSWORD))
    write("startup", "dave-login", dave + password)
    write("startup", "ssl-dave-login", SSL_REQUEST + dave + password)
    write("startup", "gssenc-ssl-dave-login", GSSENC_REQUEST + SSL_REQUEST + dave + password)
    write("startup", "gssenc-dave-wrong-password", GSSENC_REQUEST + dave + frame(b"p", cstr("wrong")))
    write("startup", "cancel", struct.pack(">iiii", 16, 80877102, 12345, 67890))
    write("startup", "protocol-3.2-pq-option",
          startup([("user", "bob"), ("database", DB), ("_pq_.command_marker", "1")], version=196610))
    write("startup", "replication", startup([("user", "dave"), ("replication", "database")]) + password)
    write("startup", "unknown-user-scram",
          startup([("user", "mallory"), ("database", DB)])
          + frame(b"p", cstr("SCRAM-SHA-256") + struct.pack(">i", 32) + b"n,,n=,r=rOprNGfwEbeRWgbNEkqO%hvY"))
    write("startup", "bad-length", struct.pack(">i", 4) + b"\0\0\0\0")
    write("startup", "direct-tls-hello", bytes.fromhex("160301002a010000260303") + bytes(32))
    write("startup", "wrong-database", startup([("user", "dave"), ("database", "postgres")]) + password)

    # extended: psycopg's real messages.
    def psycopg_session(conninfo):
        import psycopg
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for sql, params, binary, prepare in [
                ("select id_patient, name, country from dbo.dim_patient where id_patient = %s", (17,), False, None),
                ("select count(*) from dbo.fact_events where id_patient = any(%s)", ([1, 2, 3],), True, None),
                ("select %s::text, %s::int8, %s::date", ("x", 2 ** 40, "2024-02-29"), True, True),
                ("select name from dbo.dim_doctors where area like %s order by 1 limit %s", ("C%", 3), False, True),
            ]:
                try:
                    conn.execute(sql, params, binary=binary, prepare=prepare)
                except psycopg.Error:
                    pass
            try:
                with conn.cursor(name="portal1") as cur:
                    cur.execute("select id, id_patient from dbo.fact_events")
                    cur.fetchmany(2)
            except psycopg.Error:
                pass

    recorded = record_psycopg(psycopg_session)
    if recorded:
        msgs = [(t, b) for t, b in messages(recorded) if t != b"X"]
        write("extended", "psycopg-session", tlv(msgs))
    # extended: by hand.
    q = "select id_patient, name from dbo.dim_patient where id_patient = $1"
    write("extended", "parse-bind-execute-sync",
          tlv([parse("", q, [23]), bind("", "", [b"17"]), describe(b"P", ""), execute(""), SYNC]))
    write("extended", "binary-params-results",
          tlv([parse("s1", "select $1::int8 + 1, $2::text || name from dbo.dim_doctors where id_doctor = $3", [20, 25, 0]),
               describe(b"S", "s1"),
               bind("p1", "s1", [struct.pack(">q", 41), b"Dr", b"3"], [1, 0, 0], [1, 0]),
               execute("p1"), close(b"P", "p1"), close(b"S", "s1"), SYNC]))
    write("extended", "portal-suspended",
          tlv([query("begin"), parse("", "select id from dbo.fact_events order by id"), bind("c", "", []),
               execute("c", 2), execute("c", 2), FLUSH, SYNC, execute("c", 0), SYNC, query("commit")]))
    write("extended", "simple-multi",
          tlv([query("select 1; select name from dbo.dim_patient limit 2; show search_path; set statement_timeout = '1s'")]))
    write("extended", "error-then-sync",
          tlv([parse("", "select 1/0"), bind("", "", []), execute(""), parse("", "select 2"), SYNC,
               parse("", "select 3"), bind("", "", []), execute(""), SYNC]))
    write("extended", "bind-count-mismatch",
          tlv([parse("", "select $1, $2", [23, 23]), bind("", "", [b"1"], [0, 0, 0]), execute(""), SYNC]))
    write("extended", "raw-short-length",
          tlv([SYNC]) + raw(b"B\0\0\0\x02" + bytes(16)) + tlv([SYNC]))
    write("extended", "explain-describe",
          tlv([parse("e", "explain verbose select name from dbo.dim_patient where name like $1"), describe(b"S", "e"),
               bind("", "e", [b"%"]), execute(""), SYNC]))

    # statements: raw SQL (prefix --sql) and grammar bytes.
    for i, sql in enumerate([
        "SELECT name, lower(name), upper(substr(name, 1, 5)) FROM dbo.dim_patient ORDER BY id_patient",
        "SELECT p.country, count(*), string_agg(p.name, ',') FROM dbo.dim_patient p JOIN dbo.fact_events e "
        "ON p.id_patient = e.id_patient GROUP BY p.country HAVING count(*) > 1 ORDER BY 1",
        "EXPLAIN VERBOSE SELECT * FROM dbo.dim_patient WHERE name LIKE 'T%' AND id_patient IN (1, 2, 3)",
        "EXPLAIN ANALYZE SELECT max(name), min(name) FROM dbo.dim_patient",
        "WITH c AS (SELECT name, row_number() OVER (ORDER BY id_patient) AS r FROM dim_patient) "
        "SELECT r, coalesce(name, 'none') FROM c WHERE r < 5 UNION ALL SELECT 0, 'x'",
        "SELECT CASE WHEN name IS NULL THEN 'n' ELSE repeat(name, 2) END, lpad(name, 30, '*') FROM dbo.dim_patient",
        "SELECT array_agg(name), cardinality(array_agg(DISTINCT country)) FROM dbo.dim_patient",
        "SELECT d.name, (SELECT count(*) FROM dbo.fact_events e WHERE e.id_doctor = d.id_doctor) FROM dbo.dim_doctors d",
        "SELECT CAST(name AS BYTEA), encode(sha256(name), 'hex') FROM dbo.dim_patient LIMIT 3",
        "SELECT 1; SELECT name FROM dbo.dim_patient WHERE id_patient = 17; SHOW search_path",
    ]):
        write("statements", f"sql-{i:02}", b"--sql\n" + sql.encode())
    for i, n in enumerate([16, 64, 256, 1024]):
        write("statements", f"grammar-{i:02}", bytes(random.getrandbits(8) for _ in range(n)))

    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(CORPUS) for f in fs)
    print(f"corpus: {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
