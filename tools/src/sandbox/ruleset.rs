//! Builds one command's Landlock ruleset in the parent (SPEC §6.2) with the `landlock` crate,
//! best-effort over the kernel's ABI, and hands back the ruleset fd; the forked command applies
//! it with a raw `landlock_restrict_self` so nothing allocates after `fork`.
//!
//! The per-call scratch dir is opened without following a symlink in its last component: a
//! symlink put at the scratch path (by a command that can write the scratch base) must not turn
//! its target into the command's writable dir.

use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreatedAttr, Scope, path_beneath_rules,
};

use super::{DEV_PATHS, NetRule, SandboxPlan};

/// The newest ABI whose rights we ask for; the crate drops what the kernel lacks.
const WANT_ABI: ABI = ABI::V6;

/// The ruleset fd for `plan` plus the per-call `scratch` dir, or `None` when the kernel has no
/// Landlock. Errors are messages for `spawn_failed`.
pub(crate) fn build(plan: &SandboxPlan, scratch: &Path) -> Result<Option<OwnedFd>, String> {
    if !super::probe().available {
        return Ok(None);
    }
    let err = |e: landlock::RulesetError| format!("landlock ruleset: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(WANT_ABI))
        .map_err(err)?;
    if !matches!(plan.net, NetRule::Unrestricted) {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(WANT_ABI))
            .map_err(err)?;
    }
    let ruleset = ruleset.scope(Scope::from_all(WANT_ABI)).map_err(err)?;
    let mut created = ruleset.create().map_err(err)?;
    created = created
        .add_rules(path_beneath_rules(
            &plan.read_paths,
            AccessFs::from_read(WANT_ABI),
        ))
        .map_err(err)?;
    created = created
        .add_rules(path_beneath_rules(DEV_PATHS, AccessFs::from_file(WANT_ABI)))
        .map_err(err)?;
    created = created
        .add_rules(path_beneath_rules(
            &plan.read_write_paths,
            AccessFs::from_all(WANT_ABI),
        ))
        .map_err(err)?;
    let scratch_dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(scratch)
        .map_err(|e| format!("scratch dir `{}`: {e}", scratch.display()))?;
    created = created
        .add_rule(PathBeneath::new(scratch_dir, AccessFs::from_all(WANT_ABI)))
        .map_err(err)?;
    if let NetRule::AllowPorts(ports) = &plan.net {
        for port in ports {
            created = created
                .add_rule(NetPort::new(*port, AccessNet::ConnectTcp))
                .map_err(err)?;
        }
    }
    Ok(created.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_at_the_scratch_path_is_refused() {
        if !super::super::probe().available {
            return;
        }
        let base = tempfile::tempdir().expect("base");
        let target = base.path().join("target");
        std::fs::create_dir(&target).expect("mkdir");
        let link = base.path().join("scratch");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let plan = SandboxPlan::default();
        let err = build(&plan, &link).expect_err("a symlink is not a scratch dir");
        assert!(err.contains("scratch dir"), "{err}");
        assert!(matches!(build(&plan, &target), Ok(Some(_))));
    }
}
