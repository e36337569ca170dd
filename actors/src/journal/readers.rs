//! The reader pool: up to two read-only connections, each used by one `spawn_blocking` task at a
//! time (a semaphore hands out the turns), so queries never block tokio worker threads and never
//! wait for the writer (WAL readers see the last commit). Connections are opened on first use (a
//! project that never reads its journal never pays for them); one lost to a panicking query is
//! reopened on next use. Closing the pool fails later reads with `journal_unavailable{closed}`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use super::error::{JournalError, Result, UnavailableReason};
use super::store;

/// Read-only connections per journal (SPEC §12.1).
pub(crate) const READERS: usize = 2;

/// A tiny pool of read-only connections.
pub(crate) struct ReaderPool {
    path: PathBuf,
    conns: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    closed: AtomicBool,
}

impl ReaderPool {
    /// A pool of at most `size` connections (at least one), opened as reads need them.
    pub(crate) fn new(path: PathBuf, size: usize) -> Arc<Self> {
        let permits = Arc::new(Semaphore::new(size.max(1)));
        Arc::new(Self {
            path,
            conns: Mutex::new(Vec::with_capacity(size)),
            permits,
            closed: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Connection>> {
        // A poisoned lock only means a query panicked while pushing or popping; the vector is
        // still a valid list of connections.
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on a pooled connection in a blocking task.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &Path) -> Result<T> + Send + 'static,
    {
        let closed = || JournalError::unavailable(UnavailableReason::Closed);
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let taken = pool.lock().pop();
            let conn = match taken {
                Some(conn) => conn,
                None => store::open_reader(&pool.path)?,
            };
            let result = f(&conn, &pool.path);
            if !pool.closed.load(Ordering::Acquire) {
                pool.lock().push(conn);
            }
            result
        })
        .await
        .map_err(|e| JournalError::Unavailable {
            reason: UnavailableReason::SqliteError,
            detail: format!("journal read task failed: {e}"),
        })?
    }

    /// Closes every connection; later reads fail.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        self.lock().clear();
    }
}
