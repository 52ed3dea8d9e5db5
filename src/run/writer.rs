//! The journal writer: a thread that appends events to the store — every event queued
//! while it was busy in one transaction — and then shows them to an observer (the progress
//! view). The engine hands events over a channel, so no database
//! or terminal I/O ever runs on the async runtime; the channel keeps their order. The
//! engine waits for [`WriterHandle::durable`] before anything changes the world (a tool
//! runs), and the first write error stops every later write and is reported to the engine
//! at its next event, so a run never goes on unrecorded.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use tokio::sync::watch;

use crate::run::event::Event;
use crate::run::journal::{Journal, JournalError};

/// Something that watches events after they are written (progress rendering).
pub type Observer = Box<dyn FnMut(&Event) + Send>;

/// How far the writer got: the last committed sequence number, or the error that stopped it.
#[derive(Clone, Debug, Default, PartialEq)]
struct Progress {
    committed: u64,
    failed: Option<String>,
}

/// The sending half: cheap to clone, never blocks.
#[derive(Clone)]
pub struct WriterHandle {
    progress: Arc<watch::Sender<Progress>>,
    tx: Sender<Event>,
}

/// Why the journal can record nothing more.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct WriteFailed {
    pub reason: String,
}

impl WriterHandle {
    /// Queues one event; fails once an earlier write failed.
    pub fn send(&self, event: &Event) -> Result<(), WriteFailed> {
        if let Some(reason) = &self.progress.borrow().failed {
            return Err(WriteFailed {
                reason: reason.clone(),
            });
        }
        self.tx.send(event.clone()).map_err(|_| WriteFailed {
            reason: "the journal writer stopped".into(),
        })
    }

    /// The error that stopped the writer, if one did.
    pub fn failure(&self) -> Option<WriteFailed> {
        self.progress
            .borrow()
            .failed
            .as_ref()
            .map(|reason| WriteFailed {
                reason: reason.clone(),
            })
    }

    /// Resolves once the event with sequence number `seq` (and every one before it) is
    /// committed, or with the error that stopped the writer.
    pub async fn durable(&self, seq: u64) -> Result<(), WriteFailed> {
        let mut rx = self.progress.subscribe();
        let progress = rx
            .wait_for(|p| p.committed >= seq || p.failed.is_some())
            .await
            .map_err(|_| WriteFailed {
                reason: "the journal writer stopped".into(),
            })?;
        match &progress.failed {
            Some(reason) if progress.committed < seq => Err(WriteFailed {
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// A running writer thread.
pub struct Writer {
    handle: WriterHandle,
    thread: JoinHandle<Result<Journal, JournalError>>,
}

impl Writer {
    /// Starts writing events of `run` into `journal`, then passing them to `observer`.
    /// Events queued together are committed together; `cut_after` ends a group at that
    /// event (the crash hook of the tests kills the process there, and the journal must end
    /// exactly at it).
    pub fn spawn(
        journal: Journal,
        run: String,
        observer: Observer,
        cut_after: Option<u64>,
    ) -> Writer {
        let (tx, rx) = channel();
        let progress = Arc::new(watch::Sender::new(Progress::default()));
        let reporter = Arc::clone(&progress);
        let thread = std::thread::spawn(move || {
            write_loop(journal, &run, rx, observer, &reporter, cut_after)
        });
        Writer {
            handle: WriterHandle { progress, tx },
            thread,
        }
    }

    pub fn handle(&self) -> WriterHandle {
        self.handle.clone()
    }

    /// Waits until every event sent so far is written; returns the journal, or the first
    /// write error (after which nothing more was written).
    pub fn finish(self) -> Result<Journal, JournalError> {
        drop(self.handle);
        self.thread.join().unwrap_or_else(|_| {
            Err(JournalError::Database {
                path: String::new(),
                reason: "the journal writer thread panicked".into(),
            })
        })
    }
}

/// The most events committed in one transaction: a bound on what one commit holds in
/// memory and on how long the first of them waits for it.
const MAX_GROUP: usize = 256;

fn write_loop(
    mut journal: Journal,
    run: &str,
    rx: Receiver<Event>,
    mut observer: Observer,
    progress: &watch::Sender<Progress>,
    cut_after: Option<u64>,
) -> Result<Journal, JournalError> {
    let mut group: Vec<Event> = Vec::new();
    // Blocks for the first event of a group, then takes what else is queued already: one
    // commit for every event the engine emitted while the previous group was written.
    while let Ok(first) = rx.recv() {
        group.clear();
        group.push(first);
        while group.len() < MAX_GROUP
            && cut_after.is_none_or(|cut| group[group.len() - 1].seq != cut)
        {
            match rx.try_recv() {
                Ok(event) => group.push(event),
                Err(_) => break,
            }
        }
        if let Err(e) = journal.append_group(run, &group) {
            let event = &group[0];
            let reason = format!(
                "cannot write event {} ({}): {e}",
                event.seq,
                event.kind.name()
            );
            progress.send_modify(|p| p.failed = Some(reason));
            // Nothing more is written; the engine learns it at its next event.
            return Err(e);
        }
        let last = group[group.len() - 1].seq;
        progress.send_modify(|p| p.committed = last);
        for event in &group {
            observer(event);
        }
    }
    Ok(journal)
}
