# DuckDB side of `lakehouse bench`: DuckDB in this Python process over the gold tables' Parquet
# files. Commands arrive as JSON lines on stdin, answers leave as JSON lines on stdout. Every
# timing is taken here, around DuckDB's own calls, so the pipe to the Rust harness never counts.
import datetime
import decimal
import json
import sys
import threading
import time

import duckdb

try:
    import pyarrow  # noqa: F401  (fetch_arrow_table needs it)

    HAVE_ARROW = True
except ImportError:
    HAVE_ARROW = False

con = None


def text(value):
    # The PostgreSQL text format of a value, so answers compare across engines.
    if value is None:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def ms_since(start):
    return (time.perf_counter() - start) * 1000.0


def op_open(cmd):
    global con
    con = duckdb.connect(":memory:")
    # The progress bar of long queries is printed on stdout, which carries the answers.
    con.execute("SET enable_progress_bar = false")
    if cmd.get("threads"):
        con.execute("SET threads TO %d" % int(cmd["threads"]))
    for schema in sorted({name.split(".")[0] for name in cmd["views"]}):
        con.execute('CREATE SCHEMA IF NOT EXISTS "%s"' % schema)
    for name, path in cmd["views"].items():
        schema, table = name.split(".")
        con.execute(
            "CREATE VIEW \"%s\".\"%s\" AS SELECT * FROM read_parquet('%s')"
            % (schema, table, path.replace("'", "''"))
        )
    return {"version": duckdb.__version__, "arrow": HAVE_ARROW}


def op_query(cmd):
    times, rows = [], 0
    for _ in range(int(cmd["runs"])):
        start = time.perf_counter()
        result = con.execute(cmd["sql"]).fetchall()
        times.append(ms_since(start))
        rows = len(result)
    return {"ms": times, "rows": rows}


def op_verify(cmd):
    result = con.execute(cmd["sql"]).fetchall()
    return {"rows": [[text(v) for v in row] for row in result]}


def op_import(cmd):
    times, rows, nbytes = [], 0, 0
    for _ in range(int(cmd["runs"])):
        start = time.perf_counter()
        if HAVE_ARROW:
            # The relation API hands DuckDB's Arrow result over without an extra copy
            # (DuckDB 2 names it to_arrow_table, earlier versions arrow).
            relation = con.sql(cmd["sql"])
            fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
            table = fetch()
            times.append(ms_since(start))
            rows, nbytes = table.num_rows, table.nbytes
        else:
            result = con.execute(cmd["sql"]).fetchall()
            times.append(ms_since(start))
            rows = len(result)
    return {"ms": times, "rows": rows, "bytes": nbytes}


def op_concurrency(cmd):
    sqls, clients, secs = cmd["sqls"], int(cmd["clients"]), float(cmd["secs"])
    latencies = [[] for _ in range(clients)]
    errors = []
    deadline = time.perf_counter() + secs

    def client(idx):
        cursor = con.cursor()
        cursor.execute("SET enable_progress_bar = false")
        k = idx
        try:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                cursor.execute(sqls[k % len(sqls)]).fetchall()
                latencies[idx].append(ms_since(start))
                k += 1
        except Exception as err:  # reported to the harness, which fails the workload
            errors.append(str(err))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[0])
    return {"lat_ms": [x for per in latencies for x in per], "elapsed_s": time.perf_counter() - started}


def op_small(cmd):
    sql, params, secs, limit = cmd["sql"], cmd.get("params"), float(cmd["secs"]), int(cmd["max"])
    latencies = []
    deadline = time.perf_counter() + secs
    started = time.perf_counter()
    k = 0
    while time.perf_counter() < deadline and k < limit:
        start = time.perf_counter()
        if params:
            con.execute(sql, [params[k % len(params)]]).fetchall()
        else:
            con.execute(sql).fetchall()
        latencies.append(ms_since(start))
        k += 1
    return {"lat_ms": latencies, "elapsed_s": time.perf_counter() - started}


OPS = {
    "open": op_open,
    "query": op_query,
    "verify": op_verify,
    "import": op_import,
    "concurrency": op_concurrency,
    "small": op_small,
}

for line in sys.stdin:
    if not line.strip():
        continue
    try:
        cmd = json.loads(line)
        answer = OPS[cmd["op"]](cmd)
    except Exception as err:
        answer = {"error": "%s: %s" % (type(err).__name__, err)}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
