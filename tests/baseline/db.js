// One SQLite file as the baselines use it: WAL, and every commit synced (synchronous=FULL), as
// Greenlight's SQLite storage does.
const Database = require("better-sqlite3");

function open(path, table) {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id TEXT PRIMARY KEY, body TEXT NOT NULL, at INTEGER NOT NULL)`);
  const insert = db.prepare(`INSERT OR IGNORE INTO ${table} (id, body, at) VALUES (?, ?, ?)`);
  const count = db.prepare(`SELECT count(*) AS n FROM ${table}`);
  return {
    // Autocommit: the row is durable when this returns. `true` for a new id.
    record: (id, body) => insert.run(id, body, Date.now()).changes === 1,
    count: () => count.get().n,
  };
}

module.exports = { open };
