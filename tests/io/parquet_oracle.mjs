// DuckDB oracle for the Parquet reader tests (node + @duckdb/node-api).
//   node parquet_oracle.mjs fixtures OUTDIR   write fixture files (versions x codecs, plus
//                                             parquet_handmade.py's file) and, for
//                                             each, DuckDB's reading as JSON; OUTDIR/index.json
//                                             lists them with the encodings DuckDB reports.
//   node parquet_oracle.mjs fixtures OUTDIR FILE...  also DuckDB's reading of each FILE, as
//                                             OUTDIR/extra_<k>.json (index.json "extra").
//   node parquet_oracle.mjs write OUT.parquet SELECT COPY_OPTIONS READBACK
//                                             COPY (SELECT) TO OUT.parquet (FORMAT parquet,
//                                             COPY_OPTIONS); then OUT.json: the rows of
//                                             `SELECT READBACK FROM OUT.parquet`, and
//                                             OUT.schema.json / OUT.row_groups.json: DuckDB's
//                                             parquet_schema() and row group sizes.
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
  const codecs = await con.runAndReadAll(
    `SELECT DISTINCT compression AS c FROM parquet_metadata(${sqlString(file)})`);
  return { encodings: r.getRowObjectsJson().map((x) => x.e).sort(), row_groups: Number(rg.getRowObjectsJson()[0].n),
           compression: codecs.getRowObjectsJson().map((x) => x.c).sort() };
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
    // Every codec DuckDB writes ('lz4' and 'lz4_raw' both give LZ4_RAW).
    for (const codec of ['uncompressed', 'snappy', 'gzip', 'zstd', 'brotli', 'lz4', 'lz4_raw']) {
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
  // The same data with the deprecated Hadoop-framed LZ4 codec, which DuckDB cannot read: the
  // reference is DuckDB's reading of the GZIP file (the generator differs only in the codec).
  const handmadeLz4 = path.join(out, 'handmade_lz4.parquet');
  execFileSync('python3', [path.join(path.dirname(new URL(import.meta.url).pathname), 'parquet_handmade.py'), handmadeLz4, 'lz4']);
  index.push({ file: handmadeLz4, json: hjson, version: 'handmade', codec: 'lz4', rows: 2000,
               encodings: index[index.length - 1].encodings, compression: ['LZ4', 'UNCOMPRESSED'] });
  // LZO: no reader here supports it; the file is for the error message.
  const handmadeLzo = path.join(out, 'handmade_lzo.parquet');
  execFileSync('python3', [path.join(path.dirname(new URL(import.meta.url).pathname), 'parquet_handmade.py'), handmadeLzo, 'lzo']);
  const extra = [];
  for (const [k, file] of process.argv.slice(4).entries()) {
    const json = path.join(out, `extra_${k}.json`);
    fs.writeFileSync(json, JSON.stringify(await readAsJson(file)));
    extra.push({ file, json });
  }
  fs.writeFileSync(path.join(out, 'index.json'), JSON.stringify({ fixtures: index, extra, lzo: handmadeLzo }, null, 1));
} else if (mode === 'write') {
  const [file, select, options, readback] = process.argv.slice(3);
  await con.run(`COPY (${select}) TO ${sqlString(file)} (FORMAT parquet${options ? ', ' + options : ''})`);
  const base = file.replace(/\.parquet$/, '');
  const rows = await con.runAndReadAll(`SELECT ${readback} FROM read_parquet(${sqlString(file)})`);
  fs.writeFileSync(`${base}.json`, JSON.stringify(rows.getRowObjectsJson()));
  const schema = await con.runAndReadAll(
    `SELECT name, type, converted_type, scale, precision, logical_type FROM parquet_schema(${sqlString(file)})`);
  fs.writeFileSync(`${base}.schema.json`, JSON.stringify(schema.getRowObjectsJson()));
  const groups = await con.runAndReadAll(
    `SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(${sqlString(file)}) ORDER BY row_group_id`);
  fs.writeFileSync(`${base}.row_groups.json`, JSON.stringify(groups.getRowObjectsJson().map((g) => Number(g.row_group_num_rows))));
} else {
  console.error('usage: parquet_oracle.mjs fixtures OUTDIR [FILE...] | write OUT.parquet SELECT COPY_OPTIONS READBACK');
  process.exit(2);
}
