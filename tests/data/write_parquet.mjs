// Test helper: DuckDB writes the result of a SELECT as a Parquet file.
//   node write_parquet.mjs OUT.parquet "SELECT ..."
const modulePath = process.env.ROBOMETER_DUCKDB_MODULE ||
  '/work/main/.deps/node/node_modules/@duckdb/node-api/lib/index.js';
const { DuckDBInstance } = await import(modulePath);
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
const out = process.argv[2].replaceAll("'", "''");
await con.run(`COPY (${process.argv[3]}) TO '${out}' (FORMAT parquet)`);
