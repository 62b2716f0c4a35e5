#!/usr/bin/env python3
"""Regenerates src/pg/types/builtin.rs from a real PostgreSQL 15 server.

Usage: python3 tools/gen_pgtypes.py [psql connection args...]   (default: -h 127.0.0.1 -U postgres)
The rows are PostgreSQL's own built-in catalog data; clients bind type handlers by them.
"""
import subprocess
import sys

ARGS = sys.argv[1:] or ["-h", "127.0.0.1", "-U", "postgres"]


def q(sql):
    out = subprocess.check_output(["psql", *ARGS, "-At", "-F", "\x1f", "-c", sql]).decode()
    return [line.split("\x1f") for line in out.splitlines() if line]


NAMES = ",".join(f"'{n}'" for n in """bool bytea char name int8 int2 int2vector int4 regproc text oid
oidvector json xml float4 float8 money bpchar varchar date time timestamp timestamptz interval timetz
bit varbit numeric regclass regtype regnamespace regrole regprocedure regoper regoperator regconfig
regdictionary uuid jsonb jsonpath record void unknown inet cidr macaddr tid xid cid aclitem anyarray
pg_node_tree cstring int4range int8range numrange daterange tsrange tstzrange pg_lsn""".split())

rows = q(f"""select t.oid, t.typname, t.typlen, t.typtype, t.typcategory, t.typelem, t.typarray,
 t.typreceive::oid, t.typinput::oid, t.typoutput::oid, t.typsend::oid, t.typdelim, t.typcollation,
 t.typbyval, t.typalign, t.typstorage, t.typrelid, coalesce(r.rngsubtype,0), t.typispreferred
 from pg_type t left join pg_range r on r.rngtypid=t.oid
 where t.typname in ({NAMES}) or t.oid in (select typarray from pg_type where typname in ({NAMES}) and typarray<>0)
 order by t.oid""")
procs = sorted({int(r[i]) for r in rows for i in (7, 8, 9, 10) if r[i] != "0"})
prows = q("select oid, proname, pronargs, prorettype, proargtypes::text from pg_proc where oid in (%s) order by oid"
          % ",".join(map(str, procs)))

with open("src/pg/types/builtin.rs", "w") as f:
    f.write("//! PostgreSQL 15's own rows for the built-in types we serve, generated from `pg_type`,\n"
            "//! `pg_range` and `pg_proc` of a real PostgreSQL 15 server (see `tools/gen_pgtypes.py`).\n"
            "//! Clients such as Npgsql bind their type handlers by these names and OIDs, so they must be\n"
            "//! PostgreSQL's exactly.\n\n")
    f.write("use super::{BuiltinProc, BuiltinType};\n\n")
    f.write("/// Every built-in type, ordered by OID.\npub const TYPES: &[BuiltinType] = &[\n")
    for (oid, name, ln, tt, cat, elem, arr, recv, inp, outp, send, delim, coll, byval, align, storage,
         _relid, rngsub, pref) in rows:
        f.write(f"    BuiltinType {{ oid: {oid}, name: \"{name}\", len: {ln}, kind: b'{tt}', category: b'{cat}', "
                f"elem: {elem}, array: {arr}, receive: {recv}, input: {inp}, output: {outp}, send: {send}, "
                f"delim: b'{delim}', collation: {coll}, by_val: {str(byval == 't').lower()}, align: b'{align}', "
                f"storage: b'{storage}', range_subtype: {rngsub}, preferred: {str(pref == 't').lower()} }},\n")
    f.write("];\n\n/// The I/O functions those types name, ordered by OID.\npub const PROCS: &[BuiltinProc] = &[\n")
    for (oid, name, nargs, ret, argtypes) in prows:
        f.write(f"    BuiltinProc {{ oid: {oid}, name: \"{name}\", nargs: {nargs}, ret: {ret}, args: \"{argtypes}\" }},\n")
    f.write("];\n")
print(f"{len(rows)} types, {len(prows)} procs")
