//! Where a [`Snapshot`] is kept: the [`SnapshotStore`] trait, a crash-safe
//! JSON file ([`FileStore`]) and a shared in-memory slot ([`MemoryStore`]).
//!
//! A store is used by one [`Snapshotter`](super::Snapshotter) at a time: the
//! actor calls `save` from one blocking thread, never two at once. Two
//! processes must not share one file.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::snapshot::Snapshot;

/// A durable home for the snapshot.
pub trait SnapshotStore: Send + 'static {
    /// The last saved snapshot, None when nothing was saved yet.
    fn load(&self) -> Result<Option<Snapshot>, StoreError>;

    /// Saves durably (returns only once the snapshot survives a crash).
    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError>;

    /// The file behind the store, for logs and errors; `None` when there is
    /// none (in memory).
    fn location(&self) -> Option<&Path> {
        None
    }
}

/// Why a store could not load or save.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading, writing, syncing or renaming failed.
    #[error("snapshot file {}", path.display())]
    Io {
        /// The file (or directory) the operation was on.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file exists but is not a snapshot. It is never silently reset:
    /// move it away (or repair it) to start over.
    #[error("snapshot file {} is corrupt", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: serde_json::Error,
    },
}

impl StoreError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            StoreError::Io { path, .. } | StoreError::Corrupt { path, .. } => path,
        }
    }

    fn io(path: &Path, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// An equivalent error (same variant, path, kind and message) for one
    /// more waiter: the sources are not `Clone`.
    pub(crate) fn replicate(&self) -> StoreError {
        match self {
            StoreError::Io { path, source } => StoreError::Io {
                path: path.clone(),
                source: io::Error::new(source.kind(), source.to_string()),
            },
            StoreError::Corrupt { path, source } => StoreError::Corrupt {
                path: path.clone(),
                source: <serde_json::Error as serde::de::Error>::custom(source.to_string()),
            },
        }
    }
}

/// A snapshot in one JSON file, replaced atomically.
///
/// `save` writes `<name>.tmp` beside the file, syncs it, renames it over the
/// file and syncs the directory, so the file always holds either the previous
/// or the new snapshot, whole, even across a crash or power loss. `load`
/// ignores (and removes) a temp file a crash left behind.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    temp: PathBuf,
}

impl FileStore {
    /// A store in the file at `path` (its directory must exist).
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        let path = path.into();
        let mut temp = OsString::from(path.as_os_str());
        temp.push(".tmp");
        FileStore {
            path,
            temp: PathBuf::from(temp),
        }
    }

    /// The snapshot file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temp file `save` writes before renaming it over [`path`](Self::path).
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    fn directory(&self) -> &Path {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }

    fn write_temp(&self, bytes: &[u8]) -> Result<(), StoreError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.temp)
            .map_err(|e| StoreError::io(&self.temp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| StoreError::io(&self.temp, e))
    }

    #[cfg(unix)]
    fn sync_directory(&self) -> Result<(), StoreError> {
        let directory = self.directory();
        File::open(directory)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| StoreError::io(directory, e))
    }

    /// Elsewhere a directory cannot be opened as a file; the rename is as
    /// durable as the platform makes it.
    #[cfg(not(unix))]
    fn sync_directory(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

impl SnapshotStore for FileStore {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        match fs::remove_file(&self.temp) {
            Ok(()) => tracing::info!(
                path = %self.temp.display(),
                "removed a snapshot temp file left by an interrupted save"
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Harmless: the next save truncates it.
            Err(e) => tracing::warn!(
                path = %self.temp.display(),
                error = %e,
                "cannot remove a leftover snapshot temp file"
            ),
        }
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(&self.path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StoreError::Corrupt {
                path: self.path.clone(),
                source,
            })
    }

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(snapshot).map_err(|e| {
            StoreError::io(&self.path, io::Error::new(io::ErrorKind::InvalidData, e))
        })?;
        bytes.push(b'\n');
        self.write_temp(&bytes)?;
        fs::rename(&self.temp, &self.path).map_err(|e| StoreError::io(&self.path, e))?;
        self.sync_directory()
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }
}

/// A snapshot kept in memory: for tests, and for applications that do not
/// persist. Clones share one slot, so a test can keep a clone, hand the other
/// to a [`Snapshotter`](super::Snapshotter), and read what it saved.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    slot: Arc<Mutex<Option<Snapshot>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that already holds `snapshot`.
    pub fn with(snapshot: Snapshot) -> MemoryStore {
        MemoryStore {
            slot: Arc::new(Mutex::new(Some(snapshot))),
        }
    }

    /// The last saved snapshot.
    pub fn snapshot(&self) -> Option<Snapshot> {
        self.lock().clone()
    }

    /// The slot, even when a panicking holder poisoned it (a snapshot is
    /// replaced whole, so it is never half-written).
    fn lock(&self) -> MutexGuard<'_, Option<Snapshot>> {
        self.slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SnapshotStore for MemoryStore {
    fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.snapshot())
    }

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        *self.lock() = Some(snapshot.clone());
        Ok(())
    }
}
