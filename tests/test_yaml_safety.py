"""No config value can become Lua code: literals, keys and comments round-trip through the real
LuaJIT byte for byte, and random configs compile, evaluate and come back as exactly the values
they were (hypothesis)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lupa import luajit21

from engitor.errors import UserError
from engitor.recipe import lua_emit, yaml_doc, yaml_front
from engitor.recipe import settings as table

ANY_CHAR = st.characters(blacklist_categories=())  # surrogates too


class CoreDumper(yaml.SafeDumper):
    """Writes YAML that `Document` reads back as the same values (it quotes what the core
    schema would otherwise read as a number, boolean or null): the configs these tests make."""

    yaml_implicit_resolvers = yaml_doc.CoreResolver.yaml_implicit_resolvers


def dump(data: object) -> str:
    # Non-ASCII as escapes: PyYAML writes U+0085 (and U+2028/9) raw, and reads them as line breaks.
    return yaml.dump(data, Dumper=CoreDumper, allow_unicode=False, sort_keys=False)


@pytest.fixture(scope="module")
def lua():
    return luajit21.LuaRuntime(encoding=None)  # strings come back as bytes


def expected_bytes(text: str) -> bytes:
    out = bytearray()
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        else:
            out += ch.encode("utf-8", "surrogatepass")
    return bytes(out)


def assert_one_safe_line(text: str) -> None:
    assert "\n" not in text and "\r" not in text
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
    assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_every_byte_string_is_a_literal_of_itself(lua, data):
    literal = lua_emit.string(data)
    assert_one_safe_line(literal)
    assert lua.execute(f"return {literal}") == data


@given(st.text(alphabet=ANY_CHAR, max_size=100))
@settings(max_examples=300)
def test_every_text_is_a_literal_of_its_bytes(lua, text):
    literal = lua_emit.string(text)
    assert_one_safe_line(literal)
    assert literal.startswith('"') and literal.endswith('"')
    # Whatever follows cannot be reached by the text: the chunk returns it and nothing else.
    assert lua.execute(f"local x = {literal} return x, 42") == (expected_bytes(text), 42)


@pytest.mark.parametrize("text", [
    "]]", "]=]", "]==]", "[[", "--[[", '"', "'", "\\", '\\"', "\n", "\r\n", "\0", "\0" + "1",
    "\x1b[31m", "a\u202eb", "\u2028", "\ufeff", "\udcff", "\ud800", "é", "😀",
    '" .. os.exit() .. "',
    "\" ) image 'evil' { program = 'x' } (\"",
])
def test_hostile_strings(lua, text):
    literal = lua_emit.string(text)
    assert_one_safe_line(literal)
    assert lua.execute(f"return {literal}") == expected_bytes(text)


@given(st.text(alphabet=ANY_CHAR, min_size=1, max_size=40))
@settings(max_examples=200)
def test_every_key_is_a_key_of_itself(lua, key):
    written = lua_emit.key(key)
    assert_one_safe_line(written)
    assert lua.execute(f"return (next({{ {written} = true }}))") == expected_bytes(key)
    assert (written == key) == lua_emit.is_name(key)


@pytest.mark.parametrize("word", sorted(lua_emit.KEYWORDS))
def test_keywords_are_quoted_keys(lua, word):
    assert lua_emit.key(word) == f'["{word}"]'
    assert lua.execute(f"return (next({{ {lua_emit.key(word)} = 1 }}))") == word.encode()


@given(st.text(alphabet=ANY_CHAR, max_size=100))
@settings(max_examples=300)
def test_every_comment_is_one_line_lua_ignores(lua, text):
    line = lua_emit.comment(text)
    assert line.startswith("--")
    assert "\n" not in line and "\r" not in line
    assert lua.execute(f"{line}\nreturn 42") == 42


def test_values_that_look_like_lua_stay_values(tmp_path):
    hostile = ["]]", "]=] os.exit(1) --[=[", '"); image("evil", {program = "x"}) --',
               "\nimage 'evil' { program = 'x' }\n", "\0", "\\", "--[[ comment", "\u202e}"]
    data = {"program": "./s", "args": [h for h in hostile if "\0" not in h],
            "env": {f"K{n}": v for n, v in enumerate(hostile) if "\0" not in v},
            "map": {v: "/x" for v in hostile if "\0" not in v}}
    path = tmp_path / "app.yaml"
    path.write_text(dump(data))
    compiled = yaml_front.compile_config(path)
    (image,) = yaml_front.evaluate(compiled).images
    assert image.args == tuple(data["args"]) and image.env == data["env"]
    assert image.map == data["map"]
    # NUL is data too: the settings table refuses it, at the item.
    data["args"] = ["ok", "a\0b"]
    path.write_text(dump(data))
    with pytest.raises(UserError, match="args: item 2: strings cannot contain NUL bytes"):
        yaml_front.load_config(path)


# ---------------------------------------------------------------------------------------------
# Round trip: random configs -> YAML or JSON -> Lua -> the model, equal to the settings table's
# own reading of the same data.

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
               max_size=12)
NONEMPTY = TEXT.filter(bool)
EXACT_INT = st.integers(min_value=-lua_emit.MAX_EXACT, max_value=lua_emit.MAX_EXACT)


@st.composite
def port_lists(draw):
    hosts = draw(st.lists(st.integers(1, 65535), unique=True, max_size=4))
    out: list[object] = []
    for host in hosts:
        guest = draw(st.integers(1, 65535))
        out.append(draw(st.sampled_from([host, str(host), f"{host}:{guest}", f"{host}-{guest}",
                                         f"0.0.0.0:{host}:{guest}"])))
    return out


SETTING_VALUES = {
    "program": NONEMPTY,
    "package": st.one_of(st.none(), NONEMPTY),
    "debian": st.lists(NONEMPTY, max_size=3),
    "args": st.lists(st.one_of(TEXT, EXACT_INT), max_size=5),
    "env": st.dictionaries(NONEMPTY.filter(lambda k: "=" not in k), TEXT, max_size=4),
    "files": st.lists(TEXT, max_size=3),
    "dirs": st.lists(TEXT, max_size=3),
    "map": st.dictionaries(NONEMPTY, TEXT, max_size=3),
    "ports": port_lists(),
    "memory": st.one_of(st.integers(32, 65536), st.integers(32, 65536).map(lambda n: f"{n}M"),
                        st.integers(1, 64).map(lambda n: f"{n}G")),
    "cpus": st.integers(1, 256),
    "accel": st.sampled_from(["auto", "kvm", "tcg", "TCG"]),
    "kernel": NONEMPTY,
    "kernel_args": st.lists(TEXT, max_size=3),
    "modules": st.lists(TEXT, max_size=3),
    "hostname": st.one_of(st.none(), TEXT),
    "workdir": TEXT,
    "user": st.one_of(st.none(), NONEMPTY),
    "nameservers": st.lists(st.ip_addresses().map(str), max_size=2),
    "network": st.sampled_from(["auto", "static", "dhcp", "DHCP"]),
    "boot_timeout": st.integers(1, 10 ** 6),
    "stop_timeout": st.integers(0, 10 ** 6),
    "start": st.sampled_from(["boot", "snapshot", "SNAPSHOT"]),
    "volumes": st.dictionaries(st.from_regex(r"\A/[a-z][a-z0-9_/-]{0,20}[a-z0-9]\Z"),
                               st.one_of(st.just("tmpfs"),
                                         st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,15}\Z"),
                                         st.from_regex(r"\A\./[a-z]{1,8}\.img\Z")),
                               max_size=3),
}
assert set(SETTING_VALUES) == {s.name for s in table.SETTINGS}

IMAGE_NAME = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,15}\Z")


@st.composite
def image_settings(draw):
    chosen = draw(st.lists(st.sampled_from(sorted(SETTING_VALUES)), unique=True))
    data = {"program": draw(SETTING_VALUES["program"])}
    for name in chosen:
        data[name] = draw(SETTING_VALUES[name])
    return data


@st.composite
def configs(draw):
    images = draw(st.dictionaries(IMAGE_NAME, image_settings(), min_size=1, max_size=3))
    comment = draw(st.text(alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Cn", "Co"),
        blacklist_characters="\x85\u2028\u2029\ufeff\ufffe\uffff"), max_size=30))
    as_json = draw(st.booleans())
    return images, comment, as_json


@given(configs())
@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_random_configs_come_back_as_the_same_values(tmp_path, config):
    images, comment, as_json = config
    if as_json:  # ASCII-escaped JSON: characters beyond U+FFFF as surrogate pairs
        text, name = json.dumps({"images": images}, ensure_ascii=True), "config.json"
    else:
        text, name = f"# {comment}\n" + dump({"images": images}), "config.yaml"
    path = tmp_path / name
    compiled = yaml_front.compile_config(path, source=text)
    recipe = yaml_front.evaluate(compiled)
    want = tuple(table.make_image(n, data, base_dir=tmp_path) for n, data in images.items())
    assert recipe.images == want
    assert compiled.lua.startswith(lua_emit.STAMP.format(source=name))


def test_the_dumper_quotes_what_the_core_schema_would_read_otherwise():
    for text in ("0o17", "0x1F", "true", "null", "~", "1e3", ".inf", "<<", "22:22", "yes"):
        assert yaml_doc.Document(dump({"v": text}), "t").root.value[0][1].tag == \
            yaml_doc.STR, text


def test_round_trip_of_a_single_image_file(tmp_path):
    data = {"program": "./s", "args": ["]]", 1, -2], "env": {"A": "x\ny"}, "memory": 64}
    path = tmp_path / "one.yaml"
    path.write_text(dump(data))
    (image,) = yaml_front.load_config(path).images
    assert image == table.make_image("one", data, base_dir=tmp_path)


def test_no_python_object_is_ever_built(tmp_path):
    path = Path(tmp_path / "app.yaml")
    for tag in ("!!python/object/apply:os.system ['true']", "!!python/name:os.system",
                "!!binary aGVsbG8=", "!!timestamp 2001-12-14", "!!set {a: null}",
                "!!omap [a: 1]", "!custom x"):
        path.write_text(f"program: ./s\nenv:\n  A: {tag}\n")
        with pytest.raises(UserError, match="is not allowed here"):
            yaml_front.load_config(path)
