//! One writer per run: a lease in the run store. `pe exec` takes the lease of its new run and
//! `pe resume` the lease of the run it continues, in an immediate transaction, so of two
//! processes racing for one run exactly one gets it. A lease names its holder by host, boot,
//! process id and the process's start time: a holder that is still alive keeps its run (the
//! other process is refused, with the holder named), a holder that died (`kill -9`, a crash,
//! a reboot) is recognised as gone — its pid reused by another program does not count, the
//! start time differs — and its lease is taken over.

use std::path::Path;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::run::id::now_rfc3339;
use crate::run::journal::{Journal, JournalError};

/// Who holds (or wants) a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// `/proc/sys/kernel/random/boot_id` (empty where unknown): a pid means nothing across
    /// reboots.
    pub boot: String,
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/PID/stat`, field 22), so a
    /// reused pid is not mistaken for the holder.
    pub start: u64,
}

/// Why a run's lease could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Occurs when another live process holds the run.
    #[error("process {pid} on {host} (holding it since {since})")]
    Busy {
        host: String,
        pid: u32,
        since: String,
    },
    /// Occurs when the store cannot be read or written.
    #[error("{0}")]
    Store(#[from] JournalError),
}

impl Holder {
    /// This process.
    pub fn me() -> Holder {
        let pid = std::process::id();
        Holder {
            boot: boot_id(),
            host: hostname(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether the process this names is still running: on this host and this boot, with
    /// this pid and this start time. A holder on another host cannot be checked and counts
    /// as alive.
    pub fn alive(&self) -> bool {
        if self.host != hostname() {
            return true;
        }
        if self.boot != boot_id() {
            return false;
        }
        start_time(self.pid).is_some_and(|start| start == self.start)
    }
}

impl Journal {
    /// Takes the lease of `run` for `me`, unless another live process holds it.
    pub fn acquire_lease(&mut self, run: &str, me: &Holder) -> Result<(), LeaseError> {
        let path = self.path().to_path_buf();
        let db = |e: rusqlite::Error| LeaseError::Store(database(&path, e));
        let tx = self
            .conn_mut()
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let held: Option<(String, String, u32, u64, String)> = tx
            .query_row(
                "SELECT host, boot, pid, start, since FROM leases WHERE run_id = ?1",
                params![run],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get::<_, i64>(2).map(|p| u32::try_from(p).unwrap_or(0))?,
                        r.get::<_, i64>(3).map(|s| u64::try_from(s).unwrap_or(0))?,
                        r.get(4)?,
                    ))
                },
            )
            .optional()
            .map_err(db)?;
        if let Some((host, boot, pid, start, since)) = held {
            let holder = Holder {
                boot,
                host,
                pid,
                start,
            };
            if holder != *me && holder.alive() {
                return Err(LeaseError::Busy {
                    host: holder.host,
                    pid: holder.pid,
                    since,
                });
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO leases (run_id, host, boot, pid, start, since)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                run,
                me.host,
                me.boot,
                i64::from(me.pid),
                i64::try_from(me.start).unwrap_or(i64::MAX),
                now_rfc3339()
            ],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// Gives the lease of `run` back, if `me` holds it.
    pub fn release_lease(&mut self, run: &str, me: &Holder) -> Result<(), JournalError> {
        let path = self.path().to_path_buf();
        self.conn_mut()
            .execute(
                "DELETE FROM leases WHERE run_id = ?1 AND host = ?2 AND boot = ?3 AND pid = ?4",
                params![run, me.host, me.boot, i64::from(me.pid)],
            )
            .map(|_| ())
            .map_err(|e| database(&path, e))
    }
}

fn database(path: &Path, e: rusqlite::Error) -> JournalError {
    JournalError::Database {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|b| b.trim().to_string())
        .unwrap_or_default()
}

/// Field 22 of `/proc/PID/stat`: after the command name in parentheses (which may itself
/// hold spaces and parentheses), the 20th field.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_keeps_its_run_and_a_dead_one_loses_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let me = Holder::me();
        assert!(me.alive());
        j.acquire_lease("r1", &me).unwrap();
        // Taking it again is fine for the holder itself.
        j.acquire_lease("r1", &me).unwrap();
        // Another process that is alive: our parent (the test runner's parent is alive).
        let parent = std::os::unix::process::parent_id();
        let other = Holder {
            pid: parent,
            start: start_time(parent).unwrap(),
            ..me.clone()
        };
        assert!(other.alive());
        let mut j2 = Journal::open(dir.path()).unwrap();
        let Err(LeaseError::Busy { pid, .. }) = j2.acquire_lease("r1", &other) else {
            panic!("a live holder must keep its run")
        };
        assert_eq!(pid, me.pid);
        // Our lease given back, the other process takes it; now we are refused.
        j.release_lease("r1", &me).unwrap();
        j2.acquire_lease("r1", &other).unwrap();
        assert!(matches!(
            j.acquire_lease("r1", &me),
            Err(LeaseError::Busy { .. })
        ));
        // A holder whose process is gone (same pid, another start time) is taken over.
        let dead = Holder {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!dead.alive());
        j2.release_lease("r1", &other).unwrap();
        j2.acquire_lease("r1", &dead).unwrap();
        j.acquire_lease("r1", &me).unwrap();
    }

    #[test]
    fn the_start_time_is_read_past_a_command_name_with_spaces() {
        let me = std::process::id();
        assert!(start_time(me).unwrap() > 0);
        assert_eq!(start_time(u32::MAX), None);
    }
}
