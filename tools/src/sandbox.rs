//! OS sandbox for the processes codeward starts for tools (SPEC §6): what the kernel offers
//! ([`probe`]), what one command gets ([`SandboxPlan`]: Landlock filesystem and network rules,
//! rlimits), and the process-tree machinery behind `command.run` — a dedicated spawner thread that
//! clones per-call *reapers* (own session, child subreaper; `CLONE_VM`, so no page tables are
//! copied; one kept warm ahead of its call), each of which starts one command under the sandbox
//! and, on request or when the command ends, stops and kills every descendant it finds through
//! `/proc` — and the per-call scratch dirs, made ahead with their rulesets by a background
//! thread.
//!
//! Talks to the kernel only (`prctl`, `clone`, `landlock_*`, `/proc`); `command` drives it.
//!
//! # Known limits
//!
//! Listed in [`SandboxProbe::limitations`]: Landlock cannot carve sensitive files out of a
//! readable root (the argument layer covers them) nor shield `<data_dir>` inside a writable root;
//! UDP is not restricted; per-host egress for commands needs the egress proxy. There is no
//! `RLIMIT_NPROC`: it counts per user, not per tree, so it would throttle codeward itself.

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) mod reaper;
#[cfg(target_os = "linux")]
pub(crate) mod ruleset;
#[cfg(target_os = "linux")]
pub(crate) mod scratch;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) mod spawner;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) mod sys;

use std::path::PathBuf;
use std::sync::OnceLock;

use serde::Serialize;

/// How much of the OS sandbox a command ran under (`command.run` result `os_sandbox`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SandboxLevel {
    /// Landlock filesystem, network (when egress is restricted) and scoping all enforced.
    Full,
    /// Landlock enforced, but an older ABI lacks some of it (see `missing`).
    Partial,
    /// No Landlock: process-group isolation, cleared env and rlimits only.
    None,
}

/// How completely Landlock confines a command (`diagnostics.os_sandbox.scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Filesystem, TCP and scoping (signals, abstract UNIX sockets) all enforced (ABI ≥ 6).
    Enforced,
    /// Landlock present, some parts missing.
    Partial,
    /// No Landlock.
    None,
}

/// How a command's process tree is killed (`diagnostics.os_sandbox.tree_kill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TreeKill {
    /// A per-call child-subreaper finds every descendant through `/proc` (setsid'd and
    /// double-forked ones included).
    Reaper,
    /// Only the process group is signalled (descendants that leave it survive).
    ProcessGroup,
}

/// What the kernel offers, probed once (`diagnostics.os_sandbox`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxProbe {
    /// Landlock is usable (ABI ≥ 1).
    pub available: bool,
    /// The Landlock ABI version, 0 when unavailable.
    pub landlock_abi: u32,
    /// Filesystem rules are enforced.
    pub fs: bool,
    /// TCP bind/connect rules are enforced (ABI ≥ 4).
    pub net: bool,
    /// Overall enforcement.
    pub scope: Enforcement,
    /// How process trees are killed.
    pub tree_kill: TreeKill,
    /// Known limits, as human-readable sentences.
    pub limitations: Vec<String>,
}

impl SandboxProbe {
    /// The parts a command with this plan would miss, as stable names (`landlock`,
    /// `landlock_net`, `landlock_scope`, `tree_kill`); empty means full enforcement.
    pub fn missing_for(&self, net: &NetRule) -> Vec<String> {
        let mut missing = Vec::new();
        if !self.available {
            missing.push("landlock".to_owned());
        } else {
            if !self.net && !matches!(net, NetRule::Unrestricted) {
                missing.push("landlock_net".to_owned());
            }
            if self.landlock_abi < 6 {
                missing.push("landlock_scope".to_owned());
            }
        }
        if self.tree_kill != TreeKill::Reaper {
            missing.push("tree_kill".to_owned());
        }
        missing
    }

    /// The level a command with this plan runs at.
    pub fn level_for(&self, net: &NetRule) -> SandboxLevel {
        if !self.available {
            SandboxLevel::None
        } else if self.missing_for(net).is_empty() {
            SandboxLevel::Full
        } else {
            SandboxLevel::Partial
        }
    }
}

/// TCP rule for a command (Landlock ABI ≥ 4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetRule {
    /// Egress `deny`: no TCP connect and no TCP bind.
    #[default]
    DenyAll,
    /// Egress `allow`: TCP connect only to these ports; no bind.
    AllowPorts(Vec<u16>),
    /// No network rule at all (TCP not handled by the ruleset).
    Unrestricted,
}

/// Resource limits of a command (SPEC §6.2). `RLIMIT_CORE` is always 0; there is no
/// `RLIMIT_NPROC` (per user, not per tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimits {
    /// `RLIMIT_CPU`, seconds (`ceil(timeout_s) + 1`).
    pub cpu_secs: Option<u64>,
    /// `RLIMIT_FSIZE` (`command_max_file_bytes`).
    pub file_bytes: Option<u64>,
    /// `RLIMIT_NOFILE` (`command_max_open_files`).
    pub open_files: Option<u64>,
    /// `RLIMIT_AS` (`command_max_memory_bytes`), when set.
    pub memory_bytes: Option<u64>,
}

impl Default for Rlimits {
    fn default() -> Self {
        Self {
            cpu_secs: None,
            file_bytes: Some(1 << 30),
            open_files: Some(1024),
            memory_bytes: None,
        }
    }
}

impl Rlimits {
    /// `RLIMIT_CPU` for a timeout: `ceil(timeout_s) + 1`.
    pub fn cpu_secs_for(timeout: std::time::Duration) -> u64 {
        let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
        secs + 1
    }
}

/// What the OS sandbox of one command allows. The scratch dir and the `/dev` nodes of SPEC §6.2
/// are added by `command::run`; everything else not listed here is denied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxPlan {
    /// Read + execute (`command_read_paths`, see [`default_read_paths`], plus read-only
    /// outside-root exceptions). Missing paths are skipped.
    pub read_paths: Vec<PathBuf>,
    /// Full access: the canonical root and read-write outside-root exceptions.
    pub read_write_paths: Vec<PathBuf>,
    /// TCP rule.
    pub net: NetRule,
    /// Resource limits.
    pub rlimits: Rlimits,
    /// `require_os_sandbox`: fail with `os_sandbox_unavailable{missing}` instead of running
    /// under less than full enforcement.
    pub require_full: bool,
}

/// The default `command_read_paths` of SPEC §6.2 that exist on this machine.
pub fn default_read_paths() -> Vec<PathBuf> {
    [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/etc",
        "/opt",
        "/proc",
        "/nix/store",
    ]
    .iter()
    .map(PathBuf::from)
    .filter(|p| p.exists())
    .collect()
}

/// Device nodes every command may read and write (the same list the argument layer admits).
pub const DEV_PATHS: [&str; 5] = codeward_policies::COMMAND_DEVICES;

/// The known limits every probe reports.
const KNOWN_LIMITS: [&str; 4] = [
    "landlock cannot carve sensitive files out of a readable root; the argument layer covers them",
    "landlock cannot shield <data_dir> inside a writable root; use an external state_dir",
    "udp is not restricted",
    "per-host egress for commands needs the egress proxy; only tcp ports are enforced",
];

/// What the kernel offers, probed once per process (Landlock ABI, subreaper, `/proc`).
pub fn probe() -> &'static SandboxProbe {
    static PROBE: OnceLock<SandboxProbe> = OnceLock::new();
    PROBE.get_or_init(probe_now)
}

fn probe_now() -> SandboxProbe {
    let abi = landlock_abi();
    let mut limitations: Vec<String> = KNOWN_LIMITS.iter().map(|s| (*s).to_owned()).collect();
    let tree_kill = if cfg!(target_os = "linux") && std::fs::metadata("/proc/self/stat").is_ok() {
        TreeKill::Reaper
    } else {
        limitations.push("no /proc: only the process group is killed".to_owned());
        TreeKill::ProcessGroup
    };
    if abi == 0 {
        limitations.push("landlock unavailable: no filesystem or network confinement".to_owned());
    } else {
        if abi < 4 {
            limitations.push(format!(
                "landlock abi {abi} < 4: tcp connect/bind not restricted"
            ));
        }
        if abi < 6 {
            limitations.push(format!(
                "landlock abi {abi} < 6: signals and abstract unix sockets not scoped"
            ));
        }
    }
    let scope = match abi {
        0 => Enforcement::None,
        1..=5 => Enforcement::Partial,
        _ => Enforcement::Enforced,
    };
    SandboxProbe {
        available: abi > 0,
        landlock_abi: abi,
        fs: abi > 0,
        net: abi >= 4,
        scope,
        tree_kill,
        limitations,
    }
}

#[cfg(target_os = "linux")]
fn landlock_abi() -> u32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: landlock_create_ruleset with a NULL attr, size 0 and the VERSION flag only returns
    // the ABI version (or -1); it touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(r).unwrap_or(0)
}

#[cfg(not(target_os = "linux"))]
fn landlock_abi() -> u32 {
    0
}

/// Makes the calling process a child subreaper (`PR_SET_CHILD_SUBREAPER`), so orphans of the
/// tools it starts reparent to it instead of init. The runtime calls this once at start.
#[cfg(target_os = "linux")]
pub fn make_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Makes the calling process a child subreaper; unsupported off Linux.
#[cfg(not(target_os = "linux"))]
pub fn make_subreaper() -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "child subreaper needs linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_follows_abi() {
        let mut p = probe_now();
        p.available = true;
        p.landlock_abi = 7;
        p.net = true;
        p.tree_kill = TreeKill::Reaper;
        assert_eq!(p.level_for(&NetRule::DenyAll), SandboxLevel::Full);
        p.landlock_abi = 3;
        p.net = false;
        assert_eq!(
            p.missing_for(&NetRule::DenyAll),
            vec!["landlock_net", "landlock_scope"]
        );
        assert_eq!(p.level_for(&NetRule::DenyAll), SandboxLevel::Partial);
        p.available = false;
        assert_eq!(p.level_for(&NetRule::Unrestricted), SandboxLevel::None);
    }

    #[test]
    fn cpu_limit_rounds_up() {
        use std::time::Duration;
        assert_eq!(Rlimits::cpu_secs_for(Duration::from_millis(1500)), 3);
        assert_eq!(Rlimits::cpu_secs_for(Duration::from_secs(2)), 3);
    }
}
