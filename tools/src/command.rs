//! `command.run`: runs a process tree under the OS sandbox (see `sandbox`). Being built.
