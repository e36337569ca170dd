//! Property: the snapshot does not depend on the order files are listed in.

use codeward_assets::{AssetKind, LoadOptions, Sources, build_snapshot, read_sources};
use proptest::prelude::*;

use crate::support::{fixture, opts};

fn view(sources: Sources, o: &LoadOptions) -> String {
    let s = build_snapshot(sources, o, 7, None).snapshot;
    let assets: Vec<_> = AssetKind::ALL
        .iter()
        .flat_map(|k| s.assets(*k).cloned().collect::<Vec<_>>())
        .collect();
    let tools: Vec<_> = s.commands().chain(s.workflows()).cloned().collect();
    serde_json::to_string(&(
        assets,
        s.graph(),
        s.errors(),
        s.warnings(),
        s.skipped(),
        tools,
        s.versions(),
    ))
    .unwrap_or_default()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn load_is_independent_of_listing_order(seed in any::<u64>(), which in 0usize..2) {
        let dir = fixture(["valid", "broken"][which]);
        let o = opts(false, &dir);
        let sources = read_sources(&dir, &o);
        let expected = view(sources.clone(), &o);
        let mut shuffled = sources;
        // Fisher-Yates with a tiny LCG driven by the seed.
        let mut state = seed | 1;
        for v in [&mut shuffled.errors] {
            for i in (1..v.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                v.swap(i, (state >> 33) as usize % (i + 1));
            }
        }
        for i in (1..shuffled.files.len()).rev() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.files.swap(i, (state >> 33) as usize % (i + 1));
        }
        prop_assert_eq!(view(shuffled, &o), expected);
    }
}

#[test]
fn reusing_unchanged_files_gives_the_same_snapshot_as_a_fresh_load() {
    for which in ["valid", "broken"] {
        let dir = fixture(which);
        let o = opts(false, &dir);
        let first = codeward_assets::load(&dir, &o, 1).snapshot;
        let sources = read_sources(&dir, &o);
        let fresh = build_snapshot(sources.clone(), &o, 2, None).snapshot;
        let reused = build_snapshot(sources, &o, 2, Some(&first)).snapshot;
        let v = |s: &codeward_assets::AssetSnapshot| {
            let assets: Vec<_> = AssetKind::ALL
                .iter()
                .flat_map(|k| s.assets(*k).cloned().collect::<Vec<_>>())
                .collect();
            serde_json::to_string(&(assets, s.graph(), s.errors(), s.warnings()))
                .unwrap_or_default()
        };
        assert_eq!(v(&reused), v(&fresh), "{which}");
    }
}
