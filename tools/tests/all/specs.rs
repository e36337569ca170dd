//! The built-in specs: names, marks, completeness, safety flags.

use codeward_tools::{RunMode, ToolKind, builtin_specs};
use serde_json::json;

#[test]
fn builtin_catalog_is_complete_and_marked() {
    let specs = builtin_specs();
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "command.run",
            "fs.delete",
            "fs.edit",
            "fs.list",
            "fs.move",
            "fs.read",
            "fs.search",
            "fs.stat",
            "fs.write",
            "http.fetch"
        ]
    );
    for s in &specs {
        assert_eq!(s.input_schema["x-codeward-complete"], true, "{}", s.name);
        assert_eq!(s.input_schema["additionalProperties"], false, "{}", s.name);
        assert_eq!(s.input_schema["type"], "object", "{}", s.name);
        assert!(s.output_schema.is_object(), "{}", s.name);
        assert!(s.safety.sandboxed && s.llm_exposed, "{}", s.name);
        assert_eq!(
            (s.kind, s.default_run_mode),
            (ToolKind::Builtin, RunMode::Sync)
        );
        assert_eq!(
            s.safety.network_capable,
            matches!(s.name.as_str(), "command.run" | "http.fetch"),
            "{}",
            s.name
        );
    }
    let by = |n: &str| {
        specs
            .iter()
            .find(|s| s.name == n)
            .expect("spec")
            .input_schema
            .clone()
    };
    assert_eq!(by("fs.read")["properties"]["path"]["x-codeward"], "path");
    assert_eq!(
        by("fs.read")["properties"]["path"].get("x-codeward-access"),
        None
    );
    assert_eq!(
        by("fs.write")["properties"]["path"]["x-codeward-access"],
        "write"
    );
    assert_eq!(
        by("fs.move")["properties"]["source"]["x-codeward-access"],
        "write"
    );
    assert_eq!(
        by("fs.move")["properties"]["destination"]["x-codeward-access"],
        "write"
    );
    assert_eq!(
        by("fs.delete")["properties"]["path"]["x-codeward-access"],
        "write"
    );
    assert_eq!(
        by("fs.edit")["properties"]["path"]["x-codeward-access"],
        "write"
    );
    assert_eq!(by("http.fetch")["properties"]["url"]["x-codeward"], "url");
    assert_eq!(
        by("command.run")["properties"]["argv"]["x-codeward"],
        "command"
    );
    assert_eq!(by("command.run")["properties"]["env"]["x-codeward"], "env");
    assert_eq!(by("command.run")["properties"]["cwd"]["x-codeward"], "path");
    assert_eq!(by("fs.write")["required"], json!(["path", "content"]));
}

#[test]
fn specs_round_trip_as_snake_case_json() {
    let s = builtin_specs()
        .into_iter()
        .find(|s| s.name == "fs.stat")
        .expect("fs.stat");
    let v = serde_json::to_value(&s).expect("json");
    assert_eq!(v["kind"], "builtin");
    assert_eq!(v["default_run_mode"], "sync");
    assert_eq!(v["registration"], json!({"status": "valid", "errors": []}));
    let back: codeward_tools::ToolSpec = serde_json::from_value(v).expect("back");
    assert_eq!(back, s);
}
