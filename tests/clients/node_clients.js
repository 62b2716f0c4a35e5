// node-postgres (`pg`) and `pg-cursor` against a served lake, as a Node.js dashboard backend
// uses them: TLS, a parameterised query (extended protocol), a cursor read in pages of 7
// (Execute with a row limit, PortalSuspended), metadata from information_schema.
// Usage: node node_clients.js HOST PORT USER PASSWORD
// Prints one tab-separated line per fact for tests/it/clients_node.rs.
const { Client } = require("pg");
const Cursor = require("pg-cursor");

const [host, port, user, password] = process.argv.slice(2);

function fact(...values) {
  console.log(values.map(String).join("\t"));
}

async function main() {
  const client = new Client({
    host, port: Number(port), user, password, database: "IKHOSPITAL_DW",
    ssl: { rejectUnauthorized: false },
  });
  await client.connect();
  const tables = await client.query(
    "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
    ["dbo"],
  );
  fact("tables", tables.rows.map((r) => r.t).join(","));
  const rows = await client.query(
    "SELECT id_patient, name FROM dbo.dim_patient WHERE age > $1 ORDER BY id_patient",
    [-1],
  );
  fact("patients", rows.rowCount);
  fact("first", rows.rows[0].id_patient, rows.rows[0].name);
  fact("types", typeof rows.rows[0].id_patient, rows.fields.map((f) => f.dataTypeID).join(","));
  const cursor = client.query(new Cursor("SELECT id FROM dbo.fact_events ORDER BY id"));
  let pages = 0;
  let seen = 0;
  for (;;) {
    const page = await cursor.read(7);
    if (page.length === 0) break;
    pages += 1;
    seen += page.length;
  }
  await cursor.close();
  fact("cursor", seen, pages);
  const typed = await client.query(
    "SELECT DATE '2024-02-29' AS d, CAST(2.50 AS numeric(5,2)) AS n, true AS b, CAST(ARRAY[1,2] AS integer[]) AS a",
  );
  const t = typed.rows[0];
  fact("typed", t.d instanceof Date, t.n, t.b, JSON.stringify(t.a));
  await client.end();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
