//! The journal writer: a thread that appends each event to the store and then shows it to
//! an observer (the progress view). The engine hands events over a channel, so no database
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
    pub fn spawn(journal: Journal, run: String, observer: Observer) -> Writer {
        let (tx, rx) = channel();
        let progress = Arc::new(watch::Sender::new(Progress::default()));
        let reporter = Arc::clone(&progress);
        let thread = std::thread::spawn(move || write_loop(journal, &run, rx, observer, &reporter));
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

fn write_loop(
    mut journal: Journal,
    run: &str,
    rx: Receiver<Event>,
    mut observer: Observer,
    progress: &watch::Sender<Progress>,
) -> Result<Journal, JournalError> {
    let mut failed = None;
    for event in rx {
        if failed.is_some() {
            continue;
        }
        match journal.append(run, &event) {
            Ok(()) => {
                progress.send_modify(|p| p.committed = event.seq);
                observer(&event);
            }
            Err(e) => {
                let reason = format!(
                    "cannot write event {} ({}): {e}",
                    event.seq,
                    event.kind.name()
                );
                progress.send_modify(|p| p.failed = Some(reason));
                failed = Some(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(journal),
    }
}
