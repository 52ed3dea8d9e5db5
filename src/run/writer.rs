//! The journal writer: a thread that appends each event to the store and then shows it to
//! an observer (the progress view). The engine hands events over a channel, so no database
//! or terminal I/O ever runs on the async runtime; the channel keeps their order.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use crate::run::event::Event;
use crate::run::journal::{Journal, JournalError};

/// Something that watches events after they are written (progress rendering).
pub type Observer = Box<dyn FnMut(&Event) + Send>;

/// The sending half: cheap to clone, never blocks.
#[derive(Clone)]
pub struct WriterHandle {
    tx: Sender<Event>,
}

impl WriterHandle {
    pub fn send(&self, event: &Event) {
        // The receiver only goes away after the engine finished; nothing to do then.
        let _ = self.tx.send(event.clone());
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
        let thread = std::thread::spawn(move || write_loop(journal, &run, rx, observer));
        Writer {
            handle: WriterHandle { tx },
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
) -> Result<Journal, JournalError> {
    let mut failed = None;
    for event in rx {
        if failed.is_none()
            && let Err(e) = journal.append(run, &event)
        {
            failed = Some(e);
        }
        observer(&event);
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(journal),
    }
}
