//! The run store: an SQLite database (`runs.db` under `.pe/`, or `--store`/`PE_HOME`) with
//! one append-only table of events. Events are committed in transactions of one or more
//! (what the writer found queued), in WAL mode, so a process killed at any moment leaves
//! every earlier committed event readable and the group being written either whole or
//! absent. Readers still check each row: a last row that does not
//! parse (a torn write from a crash outside SQLite's guarantees, or a foreign writer) is
//! dropped and reported; a bad row before the end is corruption and an error.

use std::path::{Path, PathBuf};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, params};

use crate::run::event::Event;

/// File name of the database inside the store directory.
pub const DB_FILE: &str = "runs.db";

/// An open run store.
pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

/// Why the run store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// Occurs when an event before the last one of a run cannot be read back.
    #[error("the journal of run {run} is corrupt at event {seq}: {reason}")]
    Corrupt {
        reason: String,
        run: String,
        seq: u64,
    },
    /// Occurs when the database cannot be created, opened, read or written.
    #[error("run store {path}: {reason}")]
    Database { path: String, reason: String },
    /// Occurs when `pe show RUN` names no run, or a prefix several runs share.
    #[error("{message}")]
    NoSuchRun { message: String },
}

/// A run's events as read back.
#[derive(Debug)]
pub struct Read {
    pub events: Vec<Event>,
    /// The sequence number of a torn last event that was dropped.
    pub dropped_torn: Option<u64>,
}

/// One line of `pe runs`: what the index table knows, plus the finishing event if any.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: String,
    pub started_at: String,
    pub workflow: String,
}

impl Journal {
    /// Opens the store in `dir` for reading: `None` when it was never created (reading
    /// commands must not create stores as a side effect).
    pub fn open_existing(dir: &Path) -> Result<Option<Journal>, JournalError> {
        if dir.join(DB_FILE).is_file() {
            Journal::open(dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Opens (creating when needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(DB_FILE);
        let err = |e: &dyn std::fmt::Display| JournalError::Database {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
        let conn = Connection::open(&path).map_err(|e| err(&e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| err(&e))?;
        // WAL + NORMAL: a commit survives the process being killed (not a power cut before
        // the next checkpoint), and costs no fsync per event.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| err(&e))?;
        // Keep the WAL file when the store closes (it is still checkpointed first, so no
        // durability changes): the next run then overwrites its blocks instead of growing
        // a new file, which made each commit ~3× slower (benches/exec.rs: ~40 µs → ~12 µs
        // per event), and closing skips an unlink.
        conn.file_control(
            Some(rusqlite::MAIN_DB),
            rusqlite::FileControl::PersistWal(&mut 1),
        )
        .map_err(|e| err(&e))?;
        // Closing does not checkpoint either (two fsyncs and a copy of the WAL into the
        // database on every exit): the WAL stays valid on disk and the next process reads
        // through it, exactly as after a kill. SQLite's automatic checkpoint (every 1,000
        // pages of WAL, about 4 MB) still bounds the file while events are written.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(|e| err(&e))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY,
                workflow TEXT NOT NULL,
                started_at TEXT NOT NULL
            );
            CREATE TABLE IF NOT EXISTS events (
                run_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                type TEXT NOT NULL,
                data TEXT NOT NULL,
                PRIMARY KEY (run_id, seq)
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS leases (
                run_id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                boot TEXT NOT NULL,
                pid INTEGER NOT NULL,
                start INTEGER NOT NULL,
                since TEXT NOT NULL
            );",
        )
        .map_err(|e| err(&e))?;
        Ok(Journal { conn, path })
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn db_error(&self, e: impl std::fmt::Display) -> JournalError {
        JournalError::Database {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Appends one event of `run` in its own transaction. A `run_started` event also enters
    /// the run in the index of runs.
    pub fn append(&mut self, run: &str, event: &Event) -> Result<(), JournalError> {
        self.append_group(run, std::slice::from_ref(event))
    }

    /// Appends events of `run` in one transaction: all of them are committed, or none (a
    /// group is what the writer found queued; committing it once costs what one event did).
    pub fn append_group(&mut self, run: &str, events: &[Event]) -> Result<(), JournalError> {
        let path = &self.path;
        let tx = self.conn.transaction().map_err(|e| db(path, e))?;
        for event in events {
            let data = serde_json::to_string(event).map_err(|e| db(path, e))?;
            insert(&tx, run, event.seq, event.kind.name(), &data).map_err(|e| db(path, e))?;
            if let crate::run::event::EventKind::RunStarted { workflow, .. } = &event.kind {
                tx.prepare_cached(
                    "INSERT INTO runs (id, workflow, started_at) VALUES (?1, ?2, ?3)",
                )
                .and_then(|mut s| s.execute(params![run, workflow, event.at]))
                .map_err(|e| db(path, e))?;
            }
        }
        tx.commit().map_err(|e| db(path, e))
    }

    /// Writes a raw row, bypassing serialization (tests simulate torn writes with it).
    #[doc(hidden)]
    pub fn append_unchecked(
        &mut self,
        run: &str,
        seq: u64,
        kind: &str,
        data: &str,
    ) -> Result<(), JournalError> {
        let path = &self.path;
        let tx = self.conn.transaction().map_err(|e| db(path, e))?;
        insert(&tx, run, seq, kind, data).map_err(|e| db(path, e))?;
        tx.commit().map_err(|e| db(path, e))
    }

    /// Removes one event row: a torn last event, before a resumed run writes its own event
    /// with that sequence number.
    pub fn remove_event(&mut self, run: &str, seq: u64) -> Result<(), JournalError> {
        self.conn
            .execute(
                "DELETE FROM events WHERE run_id = ?1 AND seq = ?2",
                params![run, seq as i64],
            )
            .map(|_| ())
            .map_err(|e| self.db_error(e))
    }

    /// Every event of a run, in order.
    pub fn events(&self, run: &str) -> Result<Read, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, data FROM events WHERE run_id = ?1 ORDER BY seq")
            .map_err(|e| self.db_error(e))?;
        let rows: Vec<(i64, String)> = stmt
            .query_map(params![run], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_error(e))?;
        let mut events = Vec::with_capacity(rows.len());
        let mut dropped_torn = None;
        let last = rows.len().saturating_sub(1);
        for (i, (seq, data)) in rows.into_iter().enumerate() {
            let seq = u64::try_from(seq).unwrap_or(0);
            let parsed = serde_json::from_str::<Event>(&data)
                .map_err(|e| e.to_string())
                .and_then(|ev| {
                    if ev.seq == seq && seq == i as u64 + 1 {
                        Ok(ev)
                    } else {
                        Err(format!("expected event {} but found {}", i + 1, ev.seq))
                    }
                });
            match parsed {
                Ok(ev) => events.push(ev),
                Err(_) if i == last => dropped_torn = Some(seq),
                Err(reason) => {
                    return Err(JournalError::Corrupt {
                        reason,
                        run: run.to_string(),
                        seq,
                    });
                }
            }
        }
        Ok(Read {
            events,
            dropped_torn,
        })
    }

    /// All runs, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRow>, JournalError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, workflow, started_at FROM runs ORDER BY id")
            .map_err(|e| self.db_error(e))?;
        stmt.query_map([], |r| {
            Ok(RunRow {
                id: r.get(0)?,
                started_at: r.get(2)?,
                workflow: r.get(1)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.db_error(e))
    }

    /// The run an argument names: an exact id, a unique prefix, or `latest`/`last`.
    pub fn find_run(&self, name: &str) -> Result<String, JournalError> {
        if name == "latest" || name == "last" {
            let id: Option<String> = self
                .conn
                // The latest top-level run: a child run of a workflow tool (`parent.xxxxxxxx`)
                // is reached through its parent.
                .query_row(
                    "SELECT id FROM runs WHERE instr(id, '.') = 0 ORDER BY id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.db_error(e))?;
            return id.ok_or_else(|| JournalError::NoSuchRun {
                message: format!("no runs in {}", self.path.display()),
            });
        }
        let pattern = format!("{}%", name.replace(['%', '_'], ""));
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM runs WHERE id LIKE ?1 ORDER BY id LIMIT 3")
            .map_err(|e| self.db_error(e))?;
        let ids: Vec<String> = stmt
            .query_map(params![pattern], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.db_error(e))?;
        if let Some(exact) = ids.iter().find(|id| *id == name) {
            return Ok(exact.clone());
        }
        match ids.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(JournalError::NoSuchRun {
                message: format!("no run `{name}` in {} (see `pe runs`)", self.path.display()),
            }),
            _ => Err(JournalError::NoSuchRun {
                message: format!(
                    "`{name}` names several runs ({}, …); give more of the id",
                    ids.join(", ")
                ),
            }),
        }
    }
}

/// Inserts one event row with the statement prepared once per connection (preparing it for
/// every event was a sixth of a run's CPU time).
fn insert(
    tx: &rusqlite::Transaction,
    run: &str,
    seq: u64,
    kind: &str,
    data: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached("INSERT INTO events (run_id, seq, type, data) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![run, seq as i64, kind, data])
        .map(|_| ())
}

fn db(path: &Path, e: impl std::fmt::Display) -> JournalError {
    JournalError::Database {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::event::EventKind;
    use serde_json::json;

    fn started(seq: u64) -> Event {
        Event {
            at: "2026-11-03T12:00:00.000Z".into(),
            kind: EventKind::RunStarted {
                inputs: json!({}),
                models: Default::default(),
                parent: None,
                path: "w.yaml".into(),
                run_id: "r1".into(),
                task: "t".into(),
                workflow: "w".into(),
                workflow_sha256: None,
            },
            seq,
        }
    }

    fn step_started(seq: u64) -> Event {
        Event {
            at: "2026-11-03T12:00:01.000Z".into(),
            kind: EventKind::StepStarted {
                attempt: 1,
                step: "a".into(),
            },
            seq,
        }
    }

    #[test]
    fn events_round_trip_and_runs_are_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append("r1", &started(1)).unwrap();
        j.append("r1", &step_started(2)).unwrap();
        let read = j.events("r1").unwrap();
        assert_eq!(read.events, vec![started(1), step_started(2)]);
        assert_eq!(read.dropped_torn, None);
        assert_eq!(j.runs().unwrap()[0].workflow, "w");
        assert_eq!(j.find_run("r").unwrap(), "r1");
        assert_eq!(j.find_run("latest").unwrap(), "r1");
        assert_eq!(
            j.find_run("x").unwrap_err().to_string(),
            format!(
                "no run `x` in {} (see `pe runs`)",
                dir.path().join(DB_FILE).display()
            )
        );
    }

    #[test]
    fn the_wal_file_outlives_the_store_and_every_event_stays_readable() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append("r1", &started(1)).unwrap();
        drop(j);
        assert!(dir.path().join(format!("{DB_FILE}-wal")).is_file());
        let mut j = Journal::open(dir.path()).unwrap();
        j.append("r1", &step_started(2)).unwrap();
        drop(j);
        let j = Journal::open(dir.path()).unwrap();
        let seqs: Vec<u64> = j
            .events("r1")
            .unwrap()
            .events
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [1, 2]);
    }

    #[test]
    fn a_torn_last_event_is_dropped_but_a_torn_middle_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append("r1", &started(1)).unwrap();
        j.append("r1", &step_started(2)).unwrap();
        j.append_unchecked("r1", 3, "step_finished", r#"{"seq":3,"type":"step_fin"#)
            .unwrap();
        let read = j.events("r1").unwrap();
        assert_eq!(read.events.len(), 2);
        assert_eq!(read.dropped_torn, Some(3));
        j.append("r1", &step_started(4)).unwrap();
        let e = j.events("r1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the journal of run r1 is corrupt at event 3: EOF while parsing a string at line 1 column 25"
        );
    }

    #[test]
    fn a_group_is_committed_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append_group("r1", &[started(1), step_started(2)])
            .unwrap();
        // Event 3, then a second event 2: the duplicate fails the group, event 3 with it.
        let e = j
            .append_group("r1", &[step_started(3), step_started(2)])
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "run store {}: UNIQUE constraint failed: events.run_id, events.seq",
                dir.path().join(DB_FILE).display()
            )
        );
        let seqs: Vec<u64> = j
            .events("r1")
            .unwrap()
            .events
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, [1, 2]);
        assert_eq!(j.runs().unwrap().len(), 1);
    }

    #[test]
    fn an_uncommitted_transaction_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append("r1", &started(1)).unwrap();
        {
            let tx = j.conn.transaction().unwrap();
            tx.execute(
                "INSERT INTO events (run_id, seq, type, data) VALUES ('r1', 2, 'x', '{')",
                [],
            )
            .unwrap();
            // Dropped without commit, as when the process dies mid-write.
        }
        let reopened = Journal::open(dir.path()).unwrap();
        let read = reopened.events("r1").unwrap();
        assert_eq!(read.events, vec![started(1)]);
        assert_eq!(read.dropped_torn, None);
    }
}
