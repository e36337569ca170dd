//! The one integration test binary of `codeward-tools`: modules per area, shared support code.

mod all {
    pub mod fs_attacks;
    pub mod fs_tools;
    pub mod http;
    pub mod search;
    pub mod specs;
    pub mod support;
}
