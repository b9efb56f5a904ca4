//! Advisory locks on an output folder: one run writes into it at a time.
//!
//! ```text
//! OUT/.genopred-lock/
//!   lock              flock(2): exclusive for a whole run, shared for `--only-fold` jobs
//!   write             flock(2), exclusive and brief: starting a run, combining its folds
//!   HOST.PID          one per holder: pid, host, start time and command, for the error message
//! ```
//!
//! The operating system releases an flock when its process dies, however it dies, so a lock
//! left by a killed process is never mistaken for a live one: its holder file stays behind and
//! is reported as stale and removed by the next holder. `--only-fold` jobs that share a folder
//! on purpose each hold the lock shared (each writes its own fold record); starting a run and
//! combining the folds take the `write` lock for the milliseconds they last.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use genopred_data::error::{CoreError, Result};

/// Folder of the lock files inside a locked folder.
pub const LOCK_DIR: &str = ".genopred-lock";

/// How a process holds a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Alone: a whole run, a merge, a compare run.
    Exclusive,
    /// Beside other shared holders: `--only-fold` jobs writing their own folds.
    Shared,
}

/// A held lock on a folder; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    holder: PathBuf,
}

/// Who holds a folder, as its holder file tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// The rest of the holder file: since when, and the command.
    pub details: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} on host {}", self.pid, self.host)?;
        if !self.details.is_empty() {
            write!(f, " ({})", self.details)?;
        }
        Ok(())
    }
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `HOSTNAME`, else "localhost").
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn lock_err(path: &Path, e: std::io::Error) -> CoreError {
    CoreError::Write { path: path.to_path_buf(), source: e }
}

fn open(path: &Path) -> Result<File> {
    OpenOptions::new().create(true).truncate(false).read(true).write(true).open(path).map_err(|e| lock_err(path, e))
}

impl FolderLock {
    /// Takes `dir`'s lock in `mode` without waiting. When another process holds it in a way
    /// that excludes this one, the error names the folder, the holders (pid, host, since when,
    /// command) and `what` this process was about to do.
    pub fn acquire(dir: &Path, mode: LockMode, what: &str) -> Result<Self> {
        let lock_dir = dir.join(LOCK_DIR);
        std::fs::create_dir_all(&lock_dir).map_err(|e| lock_err(&lock_dir, e))?;
        let path = lock_dir.join("lock");
        let file = open(&path)?;
        let attempt = match mode {
            LockMode::Exclusive => file.try_lock(),
            LockMode::Shared => file.try_lock_shared(),
        };
        match attempt {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holders = live_holders(&lock_dir);
                let who = if holders.is_empty() {
                    "another process (it has not written its name yet)".to_string()
                } else {
                    holders.iter().map(Holder::to_string).collect::<Vec<_>>().join("; ")
                };
                return Err(CoreError::Data(format!(
                    "{} is in use by {who}; cannot {what} while it runs. Wait for it to finish, stop it, \
                     or choose another output folder",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(lock_err(&path, e)),
        }
        // Holder files of processes that died holding the lock: the lock is free, so they lie.
        remove_stale_holders(&lock_dir);
        let host = host_name();
        let holder = lock_dir.join(format!("{host}.{}", std::process::id()));
        let since =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let command: Vec<String> = std::env::args().collect();
        let text =
            format!("{}\n{host}\nsince unix time {since}, running `{}`\n", std::process::id(), command.join(" "));
        crate::output::write_atomic(&holder, text.as_bytes())?;
        Ok(FolderLock { _file: file, holder })
    }

    /// Runs `f` holding `dir`'s brief `write` lock, waiting for another process's: for the
    /// steps that read and rewrite shared files (starting a run, combining its folds).
    pub fn while_writing<T, E: From<CoreError>>(
        dir: &Path,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let lock_dir = dir.join(LOCK_DIR);
        std::fs::create_dir_all(&lock_dir).map_err(|e| lock_err(&lock_dir, e))?;
        let path = lock_dir.join("write");
        let file = open(&path)?;
        file.lock().map_err(|e| lock_err(&path, e))?;
        let out = f();
        drop(file);
        out
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.holder);
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let host = lines.next()?.trim().to_string();
    Some(Holder { pid, host, details: lines.collect::<Vec<_>>().join(" ") })
}

fn holders(lock_dir: &Path) -> Vec<(PathBuf, Holder)> {
    let Ok(entries) = std::fs::read_dir(lock_dir) else { return Vec::new() };
    let mut out: Vec<(PathBuf, Holder)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            !matches!(name.as_str(), "lock" | "write") && !name.starts_with(crate::output::TEMP_PREFIX)
        })
        .filter_map(|p| read_holder(&p).map(|h| (p, h)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Whether a holder is known to be dead: on this host, a pid with no process.
fn is_dead(h: &Holder) -> bool {
    h.host == host_name() && !Path::new(&format!("/proc/{}", h.pid)).exists() && Path::new("/proc/self").exists()
}

fn live_holders(lock_dir: &Path) -> Vec<Holder> {
    holders(lock_dir).into_iter().map(|(_, h)| h).filter(|h| !is_dead(h)).collect()
}

/// Called by a process that just took the lock: holders on this host whose process is gone
/// died holding it (a shared holder may still be live elsewhere, so only this host's are judged).
fn remove_stale_holders(lock_dir: &Path) {
    for (path, h) in holders(lock_dir) {
        if is_dead(&h) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Writes a holder file as another process would (tests: a dead one, one on another host).
#[cfg(test)]
fn fake_holder(dir: &Path, pid: u32, host: &str) {
    use std::io::Write;
    let lock_dir = dir.join(LOCK_DIR);
    std::fs::create_dir_all(&lock_dir).unwrap();
    let mut f = File::create(lock_dir.join(format!("{host}.{pid}"))).unwrap();
    writeln!(f, "{pid}\n{host}\nsince unix time 0, running `test`").unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exclusive_holder_excludes_everyone_and_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let first = FolderLock::acquire(tmp.path(), LockMode::Exclusive, "start a run").unwrap();
        for mode in [LockMode::Exclusive, LockMode::Shared] {
            let e = FolderLock::acquire(tmp.path(), mode, "start a run").unwrap_err().to_string();
            assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
            assert!(e.contains(&host_name()) && e.contains("cannot start a run"), "{e}");
        }
        drop(first);
        // Released: the holder file is gone and the folder can be taken again.
        assert!(holders(&tmp.path().join(LOCK_DIR)).is_empty());
        let _again = FolderLock::acquire(tmp.path(), LockMode::Exclusive, "start a run").unwrap();
    }

    #[test]
    fn shared_holders_coexist_and_keep_an_exclusive_one_out() {
        let tmp = tempfile::tempdir().unwrap();
        let a = FolderLock::acquire(tmp.path(), LockMode::Shared, "run fold 1").unwrap();
        let b = FolderLock::acquire(tmp.path(), LockMode::Shared, "run fold 2").unwrap();
        let e = FolderLock::acquire(tmp.path(), LockMode::Exclusive, "combine").unwrap_err().to_string();
        assert!(e.contains("in use by"), "{e}");
        drop((a, b));
        FolderLock::acquire(tmp.path(), LockMode::Exclusive, "combine").unwrap();
    }

    #[test]
    fn holder_files_of_dead_processes_are_stale_and_removed() {
        let tmp = tempfile::tempdir().unwrap();
        // A pid far above pid_max on this host: no such process. One on another host: kept.
        fake_holder(tmp.path(), 4_194_305, &host_name());
        fake_holder(tmp.path(), 7, "elsewhere");
        let lock = FolderLock::acquire(tmp.path(), LockMode::Shared, "run fold 1").unwrap();
        let left: Vec<Holder> = holders(&tmp.path().join(LOCK_DIR)).into_iter().map(|(_, h)| h).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().any(|h| h.host == "elsewhere"));
        assert!(left.iter().any(|h| h.pid == std::process::id()));
        drop(lock);
    }

    #[test]
    fn the_write_lock_serialises_its_sections() {
        let tmp = tempfile::tempdir().unwrap();
        let counter = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    FolderLock::while_writing(tmp.path(), || -> Result<()> {
                        let inside = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        assert_eq!(inside, 0, "two writers at once");
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        counter.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                        Ok(())
                    })
                    .unwrap();
                });
            }
        });
    }
}
