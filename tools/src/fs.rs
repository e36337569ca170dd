//! The filesystem tools (`fs.read`, `fs.write`, `fs.edit`, `fs.list`, `fs.stat`, `fs.move`,
//! `fs.delete`). Every path is opened beneath a directory fd (`beneath`), located from the
//! policy's view of the path (`locate`); content is only ever read from or written to regular
//! files, opened non-blocking and checked on the fd.

mod beneath;
pub mod delete;
pub mod edit;
pub mod list;
mod locate;
pub mod mv;
pub mod read;
pub mod stat;
mod tree;
pub mod write;

pub(crate) use beneath::fstat;
pub use beneath::{RootDir, force_walk_fallback};
pub(crate) use locate::{Located, is_reserved, locate};
pub(crate) use tree::real_dir;

/// `utf8` or `base64`, for content read or written.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 text.
    #[default]
    Utf8,
    /// Standard base64 with padding.
    Base64,
}

/// Opens `rel` beneath the project root (used by `fs.search` for each file the walk yields);
/// through a symlink, only if it lands in an allowed place (`locate::lands_safely`).
pub(crate) fn open_in_checked(
    ctx: &crate::ToolContext,
    rel: &std::path::Path,
    flags: libc::c_int,
) -> std::io::Result<std::os::fd::OwnedFd> {
    let root = &ctx.root;
    let (fd, followed) =
        beneath::open_beneath_tracked(std::os::fd::AsFd::as_fd(&**root), rel, flags, 0)?;
    if followed {
        let real = locate::fd_path(std::os::fd::AsFd::as_fd(&fd))?;
        if !locate::lands_safely(&ctx.policy, root.path(), &real) {
            return Err(std::io::Error::from_raw_os_error(libc::EXDEV));
        }
    }
    Ok(fd)
}

/// Opens absolute `rel` (relative to `/`) with no symlink followed anywhere.
pub(crate) fn open_strict(
    rel: &std::path::Path,
    flags: libc::c_int,
) -> std::io::Result<std::os::fd::OwnedFd> {
    locate::open_from_slash(rel, flags)
}
