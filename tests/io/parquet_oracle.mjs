// DuckDB oracle for the Parquet reader tests (node + @duckdb/node-api).
//   node parquet_oracle.mjs fixtures OUTDIR   write fixture files (versions x codecs, plus
//                                             parquet_handmade.py's file) and, for
//                                             each, DuckDB's reading as JSON; OUTDIR/index.json
//                                             lists them with the encodings DuckDB reports.
//   node parquet_oracle.mjs fixtures OUTDIR FILE...  also DuckDB's reading of each FILE, as
//                                             OUTDIR/extra_<k>.json (index.json "extra").
// BLOB columns are read back as upper-case hex (DuckDB hex()); everything else as
// getRowObjectsJson() renders it (BIGINT as a decimal string, lists as arrays, NULL as null).
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
const modulePath = process.env.ROBOMETER_DUCKDB_MODULE ||
  '/work/main/.deps/node/node_modules/@duckdb/node-api/lib/index.js';
const { DuckDBInstance } = await import(modulePath);

const inst = await DuckDBInstance.create(':memory:', { threads: '1' });
const con = await inst.connect();

const sqlString = (s) => `'${s.replaceAll("'", "''")}'`;

async function readAsJson(file) {
  const desc = await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`);
  const cols = desc.getRowObjectsJson().map((r) => {
    const q = `"${r.column_name.replaceAll('"', '""')}"`;
    return r.column_type === 'BLOB' ? `hex(${q}) AS ${q}` : q;
  });
  const res = await con.runAndReadAll(`SELECT ${cols.join(', ')} FROM read_parquet(${sqlString(file)})`);
  return res.getRowObjectsJson();
}

async function encodingsOf(file) {
  const r = await con.runAndReadAll(
    `SELECT DISTINCT unnest(string_split(encodings, ', ')) AS e FROM parquet_metadata(${sqlString(file)})`);
  const rg = await con.runAndReadAll(
    `SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata(${sqlString(file)})`);
  return { encodings: r.getRowObjectsJson().map((x) => x.e).sort(), row_groups: Number(rg.getRowObjectsJson()[0].n) };
}

// 4500 rows (3 row groups): every physical type, NULLs, lists (NULL / empty / NULL elements), a struct.
const TABLE = `
CREATE TABLE t AS SELECT
  i::INTEGER AS i32,
  (i * 1000003 - 2500000000)::BIGINT AS i64,
  (i % 5)::INTEGER AS small_int,
  (i / 7.0)::FLOAT AS f32,
  (i * 0.001 - 1.5)::DOUBLE AS f64,
  (i % 3 = 0) AS flag,
  CASE WHEN i % 4 = 0 THEN NULL ELSE (i % 3 = 1) END AS nflag,
  'task ' || (i % 11) AS cat,
  md5(i::VARCHAR) || repeat('x', (i % 40)::INTEGER) AS uniq,
  CASE WHEN i % 3 = 0 THEN NULL ELSE i * 2 END::BIGINT AS nint,
  CASE WHEN i % 5 = 1 THEN NULL ELSE 'v' || i END AS nstr,
  CASE WHEN i % 8 = 2 THEN NULL ELSE unhex(md5(i::VARCHAR)) END AS bl,
  ('00000000-0000-0000-0000-' || lpad(printf('%x', i), 12, '0'))::UUID AS u,
  CASE WHEN i % 7 = 0 THEN NULL
       ELSE list_transform(range((i % 5)::BIGINT), x -> CASE WHEN (x + i) % 6 = 0 THEN NULL ELSE (x + i)::INTEGER END)
  END AS l,
  list_transform(range(6), x -> ((i * 6 + x) / 3.0)::FLOAT) AS lf,
  CASE WHEN i % 9 = 0 THEN NULL ELSE list_transform(range((i % 3)::BIGINT), x -> 's' || (x + i)) END AS ls,
  CASE WHEN i % 6 = 0 THEN NULL ELSE {'a': CASE WHEN i % 4 = 0 THEN NULL ELSE i END, 'b': 'b' || i} END AS st
FROM range(4500) r(i)`;

const mode = process.argv[2];
if (mode === 'fixtures') {
  const out = process.argv[3];
  fs.mkdirSync(out, { recursive: true });
  await con.run(TABLE);
  const index = [];
  for (const version of ['V1', 'V2']) {
    for (const codec of ['uncompressed', 'snappy', 'gzip', 'zstd']) {
      const file = path.join(out, `fixture_${version}_${codec}.parquet`);
      await con.run(`COPY t TO ${sqlString(file)} (FORMAT parquet, PARQUET_VERSION ${version}, ` +
                    `COMPRESSION ${codec}, ROW_GROUP_SIZE 2048)`);
      const json = file.replace(/\.parquet$/, '.json');
      fs.writeFileSync(json, JSON.stringify(await readAsJson(file)));
      index.push({ file, json, version, codec, rows: 4500, ...(await encodingsOf(file)) });
    }
  }
  // DuckDB writes one data page per column chunk (it splits only past 100 MB) and never
  // DELTA_BYTE_ARRAY: a hand-written file covers those; DuckDB still is the oracle for it.
  const handmade = path.join(out, 'handmade.parquet');
  execFileSync('python3', [path.join(path.dirname(new URL(import.meta.url).pathname), 'parquet_handmade.py'), handmade]);
  const hjson = handmade.replace(/\.parquet$/, '.json');
  fs.writeFileSync(hjson, JSON.stringify(await readAsJson(handmade)));
  index.push({ file: handmade, json: hjson, version: 'handmade', codec: 'gzip', rows: 2000, ...(await encodingsOf(handmade)) });
  const extra = [];
  for (const [k, file] of process.argv.slice(4).entries()) {
    const json = path.join(out, `extra_${k}.json`);
    fs.writeFileSync(json, JSON.stringify(await readAsJson(file)));
    extra.push({ file, json });
  }
  fs.writeFileSync(path.join(out, 'index.json'), JSON.stringify({ fixtures: index, extra }, null, 1));
} else {
  console.error('usage: parquet_oracle.mjs fixtures OUTDIR [FILE...]');
  process.exit(2);
}
