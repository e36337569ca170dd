//! The per-call scratch dir (SPEC §6.2): `<data_dir>/tmp/<tool_call_id>`, 0700 with `tmp/`
//! inside, there before the command starts and gone when the call returns.
//!
//! Creating two directories and removing them costs more than the rest of a short command's
//! setup on some filesystems, so a *cleaner* thread keeps one **kit** ready: a dir made 0700
//! (with `tmp/`) under the last scratch base, named `.codeward-warm-<pid>-<n>`, plus the
//! Landlock ruleset for the last plan built against it (Landlock rules name inodes, so the
//! ruleset stays right when the dir is renamed). A call renames the kit into place
//! (`renameat2(RENAME_NOREPLACE)`) and uses its ruleset when the plan is the same and the kit
//! younger than [`KIT_MAX_AGE`]; otherwise it creates the dir itself and builds the ruleset.
//! After the call the dir is renamed to `.codeward-trash-<pid>-<n>` — so the scratch path is
//! gone when the call returns — and the cleaner removes it. Leftovers of a process that died
//! are swept the first time a base is used; the names also carry a random per-process nonce, so
//! the leftovers of an earlier process that had our pid (pid 1 in a restarted container) count
//! as dead too. A base that commands can reach (inside one of the plan's read or read-write
//! paths) gets none of this: its dirs are made and removed on the call's path, as before.
//!
//! The scratch path must be a plain path (no `.`/`..` component) that does not exist yet: it is
//! created by the call, granted to the command and removed afterwards, so an existing directory
//! there (a caller-chosen `tool_call_id` of `..` or `/some/dir`, a symlink a command planted) is
//! refused rather than adopted — it would be handed to the command and then deleted.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use super::{SandboxPlan, ruleset};

/// A kit's ruleset is used only this long after it was built; an older kit still gives its dir.
pub(crate) const KIT_MAX_AGE: Duration = Duration::from_secs(5);

/// Pending cleaner jobs; when full, removals happen on the caller's thread and kit requests are
/// dropped.
const QUEUE: usize = 64;

const WARM_PREFIX: &str = ".codeward-warm-";
const TRASH_PREFIX: &str = ".codeward-trash-";

/// A created scratch dir; moved out of the way and removed when dropped.
pub(crate) struct Scratch {
    dir: PathBuf,
    /// Commands may reach the scratch base: no kits there, and removal before the call returns.
    exposed: bool,
    /// Base and plan of the next kit to ask for.
    next: Option<(PathBuf, SandboxPlan)>,
}

impl Scratch {
    /// Creates `dir` (0700) with its `tmp/` — from the kit when one is ready under the same
    /// parent, else directly; fails when `dir` already exists (whatever it is) or is not a
    /// plain path. The second value is a
    /// Landlock ruleset already built for `plan` and this dir, when the kit had one.
    ///
    /// A base that lies inside one of the plan's read or read-write paths gets no kits (a
    /// command could see or fill the next call's dir) and its dirs are removed before the call
    /// returns (a later command could read them).
    pub(crate) fn create(dir: &Path, plan: &SandboxPlan) -> io::Result<(Self, Option<OwnedFd>)> {
        // INVARIANT: `dir` names a directory this call creates (checked here and by `make` /
        // `rename_noreplace`, which both fail on an existing path); only such a dir is granted
        // to the command and removed afterwards.
        if dir.file_name().is_none()
            || !dir
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("scratch dir `{}` is not a plain path", dir.display()),
            ));
        }
        let base = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        let exposed = !base.is_absolute()
            || plan
                .read_paths
                .iter()
                .chain(&plan.read_write_paths)
                .any(|p| base.starts_with(p));
        let mut ruleset = None;
        let mut made = false;
        if !exposed && let Some(kit) = take_kit(&base) {
            match rename_noreplace(&kit.dir, dir) {
                Ok(()) => {
                    made = true;
                    if kit.plan == *plan && kit.built.elapsed() < KIT_MAX_AGE {
                        ruleset = kit.ruleset;
                    }
                }
                Err(_) => remove(kit.dir),
            }
        }
        if !made {
            make(dir)?;
        }
        let next = (!exposed).then(|| (base, plan.clone()));
        Ok((
            Self {
                dir: dir.to_path_buf(),
                exposed,
                next,
            },
            ruleset,
        ))
    }

    /// Asks the cleaner thread for the next call's kit (once; called once the command is
    /// handed over, so the work stays off this call's path).
    pub(crate) fn prepare_next(&mut self) {
        if let Some((base, plan)) = self.next.take() {
            request_kit(base, plan);
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.exposed
            && let Some(base) = self.dir.parent()
        {
            let trash = base.join(unique_name(TRASH_PREFIX));
            if std::fs::rename(&self.dir, &trash).is_ok() {
                remove(trash);
                return;
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A scratch dir made ahead, with its ruleset.
struct Kit {
    base: PathBuf,
    dir: PathBuf,
    plan: SandboxPlan,
    ruleset: Option<OwnedFd>,
    built: Instant,
}

static KIT: Mutex<Option<Kit>> = Mutex::new(None);

fn take_kit(base: &Path) -> Option<Kit> {
    let mut slot = KIT.lock().ok()?;
    if slot.as_ref().is_some_and(|k| k.base == base) {
        slot.take()
    } else {
        None
    }
}

enum Job {
    /// Make a kit for this base and plan unless a fresh one is ready.
    Kit(PathBuf, SandboxPlan),
    /// Remove a dir (trash, or a kit not used).
    Remove(PathBuf),
}

fn cleaner() -> Option<&'static mpsc::SyncSender<Job>> {
    static TX: OnceLock<Option<mpsc::SyncSender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
        std::thread::Builder::new()
            .name("codeward-scratch".into())
            .spawn(move || cleaner_loop(&rx))
            .ok()
            .map(|_| tx)
    })
    .as_ref()
}

fn request_kit(base: PathBuf, plan: SandboxPlan) {
    if let Some(tx) = cleaner() {
        let _ = tx.try_send(Job::Kit(base, plan));
    }
}

/// Removes `dir` on the cleaner thread, or right here when its queue is full.
fn remove(dir: PathBuf) {
    let dir = match cleaner() {
        Some(tx) => match tx.try_send(Job::Remove(dir)) {
            Ok(()) => return,
            Err(
                mpsc::TrySendError::Full(Job::Remove(d))
                | mpsc::TrySendError::Disconnected(Job::Remove(d)),
            ) => d,
            Err(_) => return,
        },
        None => dir,
    };
    let _ = std::fs::remove_dir_all(dir);
}

fn cleaner_loop(rx: &mpsc::Receiver<Job>) {
    // Background work: yield to the calls it prepares for (raising niceness needs no privilege;
    // nothing is cloned from this thread, so no command inherits it).
    // SAFETY: gettid has no preconditions; setpriority only changes this thread's niceness.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
    let mut swept: Vec<PathBuf> = Vec::new();
    while let Ok(job) = rx.recv() {
        match job {
            Job::Remove(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Job::Kit(base, plan) => {
                if !swept.contains(&base) {
                    sweep(&base);
                    if swept.len() >= 16 {
                        swept.remove(0);
                    }
                    swept.push(base.clone());
                }
                make_kit(base, plan);
            }
        }
    }
}

fn make_kit(base: PathBuf, plan: SandboxPlan) {
    let fresh = KIT.lock().is_ok_and(|k| {
        k.as_ref().is_some_and(|k| {
            k.base == base && k.plan == plan && k.built.elapsed() < KIT_MAX_AGE / 2
        })
    });
    if fresh {
        return;
    }
    let dir = base.join(unique_name(WARM_PREFIX));
    if make(&dir).is_err() {
        // `make` removed what it had created; anything else there is not ours.
        return;
    }
    let Ok(ruleset) = ruleset::build(&plan, &dir) else {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    };
    let kit = Kit {
        base,
        dir,
        plan,
        ruleset,
        built: Instant::now(),
    };
    let old = match KIT.lock() {
        Ok(mut slot) => slot.replace(kit),
        Err(_) => Some(kit),
    };
    if let Some(old) = old {
        let _ = std::fs::remove_dir_all(old.dir);
    }
}

/// Removes the kits and trash that processes no longer alive left in `base`.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = libc::pid_t::try_from(std::process::id()).unwrap_or(-1);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = leftover_owner(name.as_bytes()) else {
            continue;
        };
        let stale = is_stale(owner, me, nonce(), |pid| {
            // SAFETY: kill with signal 0 only checks whether the pid exists.
            let r = unsafe { libc::kill(pid, 0) };
            r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
        });
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Who left a kit or trash dir: the pid and, in names made since the nonce was added, the
/// process nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    pid: libc::pid_t,
    nonce: Option<u64>,
}

/// A leftover is stale when its process is gone, or when it names our pid but not our nonce (an
/// earlier process with the same pid; names without a nonce are never made any more).
fn is_stale(
    owner: Owner,
    me: libc::pid_t,
    my_nonce: u64,
    alive: impl Fn(libc::pid_t) -> bool,
) -> bool {
    if owner.pid == me {
        owner.nonce != Some(my_nonce)
    } else {
        !alive(owner.pid)
    }
}

/// The owner in a `.codeward-{warm,trash}-<pid>-<nonce>-<n>` name (or the older
/// `.codeward-{warm,trash}-<pid>-<n>`).
fn leftover_owner(name: &[u8]) -> Option<Owner> {
    let rest = name
        .strip_prefix(WARM_PREFIX.as_bytes())
        .or_else(|| name.strip_prefix(TRASH_PREFIX.as_bytes()))?;
    let rest = std::str::from_utf8(rest).ok()?;
    let mut parts = rest.split('-');
    let pid = parts.next()?.parse().ok()?;
    let nonce = match (parts.next(), parts.next()) {
        (Some(n), Some(_)) if n.len() == 16 => u64::from_str_radix(n, 16).ok(),
        _ => None,
    };
    Some(Owner { pid, nonce })
}

/// A random number fixed for this process, in every kit and trash name.
fn nonce() -> u64 {
    static NONCE: OnceLock<u64> = OnceLock::new();
    *NONCE.get_or_init(|| {
        let mut bytes = [0u8; 8];
        // SAFETY: getrandom writes at most `bytes.len()` bytes into the live buffer.
        let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
        if n == 8 {
            u64::from_ne_bytes(bytes)
        } else {
            // No getrandom: the clock is unique enough to tell two processes apart.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        }
    })
}

fn unique_name(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}{}-{:016x}-{}",
        std::process::id(),
        nonce(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let from = std::ffi::CString::new(from.as_os_str().as_bytes())?;
    let to = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both paths are NUL-terminated and outlive the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates `dir` (0700) and its `tmp/`; fails when `dir` exists (a directory, a file or a
/// symlink: nothing there is adopted), and removes what it made when `tmp/` fails.
fn make(dir: &Path) -> io::Result<()> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut b = std::fs::DirBuilder::new();
    b.mode(0o700);
    b.create(dir).map_err(|e| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            io::Error::new(
                e.kind(),
                format!("scratch dir `{}` already exists", dir.display()),
            )
        } else {
            e
        }
    })?;
    if let Err(e) = b.create(dir.join("tmp")) {
        let _ = std::fs::remove_dir(dir);
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_names_carry_their_owner() {
        let owner = |pid, nonce| Some(Owner { pid, nonce });
        assert_eq!(leftover_owner(b".codeward-warm-123-4"), owner(123, None));
        assert_eq!(leftover_owner(b".codeward-trash-77-0"), owner(77, None));
        assert_eq!(
            leftover_owner(b".codeward-trash-77-00000000deadbeef-5"),
            owner(77, Some(0xdead_beef))
        );
        assert_eq!(leftover_owner(b"call-1"), None);
        assert_eq!(leftover_owner(b".codeward-warm-x-1"), None);
        let ours = unique_name(TRASH_PREFIX);
        let me = libc::pid_t::try_from(std::process::id()).expect("pid");
        assert_eq!(leftover_owner(ours.as_bytes()), owner(me, Some(nonce())));
    }

    #[test]
    fn leftovers_of_an_earlier_process_with_our_pid_are_stale() {
        let alive = |_| true;
        let dead = |_| false;
        let o = |pid, nonce| Owner { pid, nonce };
        // Ours: kept.
        assert!(!is_stale(o(1, Some(7)), 1, 7, dead));
        // Our pid, another nonce or none: an earlier process.
        assert!(is_stale(o(1, Some(8)), 1, 7, alive));
        assert!(is_stale(o(1, None), 1, 7, alive));
        // Another pid: stale only when that process is gone.
        assert!(!is_stale(o(2, Some(8)), 1, 7, alive));
        assert!(is_stale(o(2, Some(8)), 1, 7, dead));
    }

    #[test]
    fn existing_or_non_plain_scratch_paths_are_refused() {
        let base = tempfile::tempdir().expect("base");
        let plan = SandboxPlan::default();
        let taken = base.path().join("taken");
        std::fs::create_dir(&taken).expect("mkdir");
        std::fs::write(taken.join("keep"), "x").expect("write");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&taken, &link).expect("symlink");
        for dir in [
            taken.clone(),
            link.clone(),
            base.path().join("x").join(".."),
            base.path().join("."),
        ] {
            let err = Scratch::create(&dir, &plan).err();
            assert!(err.is_some(), "{dir:?} accepted");
        }
        assert!(taken.join("keep").exists());
        assert!(link.exists());
        let (fresh, _) = Scratch::create(&base.path().join("fresh"), &plan).expect("fresh");
        drop(fresh);
    }
}
