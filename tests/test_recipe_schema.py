"""`engitor schema`: derived from the settings table, for people and (as JSON Schema) tools."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema

from engitor.commands import schema
from engitor.recipe import settings


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engitor", "schema", *args],
                          capture_output=True, text=True, timeout=60)


def test_text_lists_every_setting_and_hook_with_type_and_default():
    proc = run_cli()
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    for s in settings.SETTINGS:
        head = next(line for line in lines if line.split()[:1] == [s.name])
        assert s.type.doc in head
        if s.default not in (None,):
            assert "(default " in head or s.default in ((), {}), head
    for hook in settings.HOOKS:
        assert any(line.split()[:1] == [hook] for line in lines)
    assert "  memory" in proc.stdout and "(default 256M)" in proc.stdout
    assert "list of paths or a function" in proc.stdout  # files may be a generator


def test_json_is_a_valid_schema_derived_from_the_table():
    proc = run_cli("--json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc == schema.json_schema()


def test_the_image_schema_accepts_good_settings_and_refuses_bad_ones():
    validator = jsonschema.Draft202012Validator(settings.image_json_schema())
    good = {"program": "./server", "args": ["-port", 8080], "ports": [8080, "8443:443", "53/udp"],
            "memory": "256M", "env": {"MODE": "prod"}, "map": {"conf/*": "/etc/app"},
            "accel": "tcg", "cpus": 2}
    assert list(validator.iter_errors(good)) == []
    for bad in ({"memry": "1G"}, {"cpus": 0}, {"accel": "xen"}, {"ports": ["http"]},
                {"memory": "lots"}, {"args": "-v"}):
        assert list(validator.iter_errors(bad)), bad


def test_image_schema_has_one_property_per_setting():
    doc = settings.image_json_schema()
    assert list(doc["properties"]) == [s.name for s in settings.SETTINGS]
    assert doc["additionalProperties"] is False
    assert all(p["description"] for p in doc["properties"].values())
    assert doc["properties"]["memory"]["default"] == 256 * 1024 * 1024
    assert doc["properties"]["accel"]["default"] == "auto"
