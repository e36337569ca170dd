//! OS sandbox: Landlock, rlimits, env scrub, process-tree reaper. Being built.
