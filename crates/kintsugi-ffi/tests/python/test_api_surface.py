"""The generated Kotlin and Swift bindings name every operation the Rust API exports."""

import re
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[2] / "src"


def rust_operations():
    """Every `pub fn` / `pub async fn` in the crate's exported code (constructors included)."""
    names = set()
    for path in SOURCE.glob("*.rs"):
        names.update(re.findall(r"^\s*pub (?:async )?fn (\w+)", path.read_text(), re.MULTILINE))
    return names


def camel(name):
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def generated(bindings_dir, language, suffix):
    root = bindings_dir / language
    return "\n".join(path.read_text() for path in root.rglob(f"*{suffix}"))


def test_kotlin_and_swift_name_every_rust_operation(bindings_dir):
    operations = rust_operations()
    assert {"add_boundary", "sync", "start_live_sync", "init_device", "check_in"} <= operations
    kotlin = generated(bindings_dir, "kotlin", ".kt")
    swift = generated(bindings_dir, "swift", ".swift")
    missing_kotlin = [op for op in operations if f"fun `{camel(op)}`(" not in kotlin]
    missing_swift = [op for op in operations if not re.search(rf"func `?{camel(op)}`?\(", swift)]
    assert missing_kotlin == [], f"not in the Kotlin bindings: {missing_kotlin}"
    assert missing_swift == [], f"not in the Swift bindings: {missing_swift}"
